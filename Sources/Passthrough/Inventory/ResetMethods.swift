/// The sysfs `reset_method` attribute: the reset methods the kernel will try, in priority order.
public enum ResetMethods {
    /// "flr pm bus\n" gives ["flr", "pm", "bus"]; an empty file (no methods, or all disabled) gives [].
    public static func parse(_ text: some StringProtocol) -> [String] {
        sysfsFields(text).map(String.init)
    }

    /// The text to write back: the kernel takes a single space-separated list.
    public static func format(_ methods: [String]) -> String {
        methods.joined(separator: " ")
    }
}

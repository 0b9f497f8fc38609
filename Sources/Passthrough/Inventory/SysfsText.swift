/// The whitespace-separated fields of a sysfs attribute's text. Attributes end in a newline and
/// separate values with single spaces; tabs and carriage returns are tolerated for hand-written
/// fixtures.
package func sysfsFields(_ text: some StringProtocol) -> [Substring] {
    String(text).split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" })
}

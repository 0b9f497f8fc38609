/// One memory or I/O region of a PCI function, as the `resource` file reports it.
public struct BAR: Codable, Hashable, Sendable {
    /// 0 to 5: the line of `resource` (a 64-bit BAR takes two config registers; the second line is empty).
    public var index: Int
    public var start: UInt64
    public var size: UInt64
    public var is64Bit: Bool
    public var prefetchable: Bool
    public init(index: Int, start: UInt64, size: UInt64, is64Bit: Bool, prefetchable: Bool) {
        self.index = index
        self.start = start
        self.size = size
        self.is64Bit = is64Bit
        self.prefetchable = prefetchable
    }
}

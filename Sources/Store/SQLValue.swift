/// One SQLite value, as bound to a parameter or read from a column.
///
/// Deliberately not `ExpressibleByNilLiteral`: `scalar(...) != nil` would then compare with `.null`
/// instead of asking whether a row came back. Write `.null`.
public enum SQLValue: Hashable, Sendable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
    case null

    public init(_ value: Int64?) {
        self = value.map { .integer($0) } ?? .null
    }

    public init(_ value: Int) {
        self = .integer(Int64(value))
    }

    public init(_ value: Int32?) {
        self = value.map { .integer(Int64($0)) } ?? .null
    }

    public init(_ value: Double?) {
        self = value.map { .real($0) } ?? .null
    }

    public init(_ value: String?) {
        self = value.map { .text($0) } ?? .null
    }

    public init(_ value: [UInt8]?) {
        self = value.map { .blob($0) } ?? .null
    }

    /// SQLite has no boolean type; 0 and 1 are the convention our CHECK constraints expect.
    public init(_ value: Bool) {
        self = .integer(value ? 1 : 0)
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

extension SQLValue: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int64) {
        self = .integer(value)
    }
}

extension SQLValue: ExpressibleByFloatLiteral {
    public init(floatLiteral value: Double) {
        self = .real(value)
    }
}

extension SQLValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) {
        self = .text(value)
    }
}

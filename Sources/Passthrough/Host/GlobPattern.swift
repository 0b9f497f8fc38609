/// A shell-style pattern as `modules.alias` uses them: `*` (any run), `?` (any one character) and
/// `[...]` classes (`[0-9A-F]`, `[!...]`); everything else is literal.
///
/// kmod matches aliases with fnmatch(3); this is the same language, written out so matching is pure
/// Swift and its cost is plain (one backtracking point, linear in practice).
public struct GlobPattern: Hashable, Sendable, CustomStringConvertible {
    private enum Token: Hashable, Sendable {
        case literal(UInt8)
        case any
        case star
        case set(ranges: [ClosedRange<UInt8>], negated: Bool)
    }

    public let text: String
    private let tokens: [Token]

    public init(_ text: String) {
        self.text = text
        self.tokens = Self.tokenize(Array(text.utf8))
    }

    public var description: String { text }

    /// How many wildcards (`*`, `?`, classes) the pattern has: fewer means more specific.
    public var wildcardCount: Int {
        tokens.count { if case .literal = $0 { false } else { true } }
    }

    /// How many characters must match literally: a tie-breaker between equally wild patterns.
    public var literalCount: Int {
        tokens.count { if case .literal = $0 { true } else { false } }
    }

    public func matches(_ candidate: String) -> Bool {
        let input = Array(candidate.utf8)
        var t = 0
        var i = 0
        // Where the last `*` was and how much input it has swallowed: on a mismatch, let it take one more.
        var starToken = -1
        var starInput = 0
        while i < input.count {
            if t < tokens.count {
                switch tokens[t] {
                case .star:
                    starToken = t
                    starInput = i
                    t += 1
                    continue
                case .any:
                    t += 1
                    i += 1
                    continue
                case .literal(let byte) where byte == input[i]:
                    t += 1
                    i += 1
                    continue
                case .set(let ranges, let negated) where ranges.contains { $0.contains(input[i]) } != negated:
                    t += 1
                    i += 1
                    continue
                default:
                    break
                }
            }
            guard starToken >= 0 else { return false }
            starInput += 1
            i = starInput
            t = starToken + 1
        }
        while t < tokens.count, tokens[t] == .star { t += 1 }
        return t == tokens.count
    }

    private static func tokenize(_ bytes: [UInt8]) -> [Token] {
        var tokens: [Token] = []
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "*"):
                // `**` means the same as `*`; one token keeps the wildcard count honest.
                if tokens.last != .star { tokens.append(.star) }
                index += 1
            case UInt8(ascii: "?"):
                tokens.append(.any)
                index += 1
            case UInt8(ascii: "["):
                if let (set, next) = bracket(bytes, from: index) {
                    tokens.append(set)
                    index = next
                } else {
                    // An unclosed `[` is an ordinary character, as in fnmatch.
                    tokens.append(.literal(byte))
                    index += 1
                }
            default:
                tokens.append(.literal(byte))
                index += 1
            }
        }
        return tokens
    }

    /// Parses `[...]` starting at `start`; returns the class and the index after `]`, or nil if unclosed.
    private static func bracket(_ bytes: [UInt8], from start: Int) -> (Token, Int)? {
        var index = start + 1
        var negated = false
        if index < bytes.count, bytes[index] == UInt8(ascii: "!") || bytes[index] == UInt8(ascii: "^") {
            negated = true
            index += 1
        }
        var ranges: [ClosedRange<UInt8>] = []
        var first = true
        while index < bytes.count {
            let byte = bytes[index]
            // A `]` right after the opening is a member, not the end.
            if byte == UInt8(ascii: "]") && !first {
                return (.set(ranges: ranges, negated: negated), index + 1)
            }
            first = false
            if index + 2 < bytes.count, bytes[index + 1] == UInt8(ascii: "-"),
                bytes[index + 2] != UInt8(ascii: "]")
            {
                let low = min(byte, bytes[index + 2])
                let high = max(byte, bytes[index + 2])
                ranges.append(low...high)
                index += 3
            } else {
                ranges.append(byte...byte)
                index += 1
            }
        }
        return nil
    }
}

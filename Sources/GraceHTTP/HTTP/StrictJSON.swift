/// A validator that accepts exactly one RFC 8259 JSON value and nothing that parsers read
/// differently: the same key twice (JSONDecoder keeps one of the values without a word), lone
/// surrogates, invalid UTF-8, and leniencies some parsers allow (comments, trailing commas, NaN).
/// Checking a body first means the service reads every input one way only.
///
/// It never recurses: containers are tracked on a bounded stack, so a body of a million '[' costs
/// one small failure, not the thread's stack.
public enum StrictJSON {
    /// Deeper than any request body needs, shallow enough for any recursive decoder after this check.
    public static let maximumDepth = 32

    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        /// Not one JSON value with optional whitespace around it; `offset` counts bytes from 0.
        case syntax(offset: Int, reason: String)
        /// An object has the same key twice; `path` names it as `outer.inner` or `items[2].name`.
        case duplicateKey(path: String)
        /// Containers nest deeper than `maximumDepth`.
        case tooDeep

        public var description: String {
            switch self {
            case .syntax(let offset, let reason): "invalid JSON at byte \(offset): \(reason)"
            case .duplicateKey(let path): "the key '\(path)' appears twice"
            case .tooDeep: "the JSON nests deeper than \(StrictJSON.maximumDepth) levels"
            }
        }
    }

    /// `nil` when `bytes` is exactly one valid JSON value, else the first problem found.
    public static func check(_ bytes: [UInt8]) -> Failure? {
        bytes.withUnsafeBufferPointer { buffer in
            var scanner = Scanner(bytes: buffer)
            do throws(Failure) {
                try scanner.document()
                return nil
            } catch {
                return error
            }
        }
    }
}

/// An open object or array.
private struct Frame {
    let isObject: Bool
    /// Object keys seen so far, decoded.
    var keys: Set<String> = []
    /// The key whose value is being read.
    var key = ""
    /// The array element being read.
    var index = 0
}

private struct Scanner {
    typealias Failure = StrictJSON.Failure

    let bytes: UnsafeBufferPointer<UInt8>
    var position = 0
    var frames: [Frame] = []
    /// The decoded bytes of the key being read, reused from key to key.
    var key: [UInt8] = []

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        frames.reserveCapacity(StrictJSON.maximumDepth)
    }

    mutating func document() throws(Failure) {
        try value()
        skipWhitespace()
        if position < bytes.count {
            throw unexpected("after the JSON value (only whitespace may follow it)")
        }
    }

    // MARK: - Structure

    /// Reads one value, containers included, with a loop in place of recursion.
    private mutating func value() throws(Failure) {
        while true {
            skipWhitespace()
            guard position < bytes.count else {
                throw syntax("expected a value, found the end of the input")
            }
            var complete = true
            switch bytes[position] {
            case .openBrace:
                try open(isObject: true)
                skipWhitespace()
                if peek == .closeBrace {
                    position += 1
                    frames.removeLast()
                } else {
                    try member(afterComma: false)
                    complete = false
                }
            case .openBracket:
                try open(isObject: false)
                skipWhitespace()
                if peek == .closeBracket {
                    position += 1
                    frames.removeLast()
                } else {
                    complete = false
                }
            case .quote:
                try string(capturing: false)
            case .minus, .digitZero ... .digitNine:
                try number()
            case .letterT:
                try literal(Self.trueBytes)
            case .letterF:
                try literal(Self.falseBytes)
            case .letterN:
                try literal(Self.nullBytes)
            default:
                throw unexpected("where a value should be")
            }
            if complete {
                guard try closeContainers() else { return }
            }
        }
    }

    /// After a value: reads separators and closing brackets until another value is due (`true`) or
    /// the outermost value has ended (`false`).
    private mutating func closeContainers() throws(Failure) -> Bool {
        // Reads the flag, not a copy of the frame: a copy would share the key set, and the next
        // insert into it would then copy the whole set.
        while let isObject = frames.last?.isObject {
            skipWhitespace()
            guard position < bytes.count else {
                throw syntax(isObject ? "the object is not closed" : "the array is not closed")
            }
            let byte = bytes[position]
            if isObject {
                if byte == .comma {
                    position += 1
                    try member(afterComma: true)
                    return true
                }
                guard byte == .closeBrace else { throw unexpected("where ',' or '}' should be") }
            } else {
                if byte == .comma {
                    position += 1
                    frames[frames.count - 1].index += 1
                    skipWhitespace()
                    if peek == .closeBracket { throw syntax("a trailing comma before ']'") }
                    return true
                }
                guard byte == .closeBracket else { throw unexpected("where ',' or ']' should be") }
            }
            position += 1
            frames.removeLast()
        }
        return false
    }

    private mutating func open(isObject: Bool) throws(Failure) {
        guard frames.count < StrictJSON.maximumDepth else { throw .tooDeep }
        frames.append(Frame(isObject: isObject))
        position += 1
    }

    /// Reads `"key":` and records the key in the innermost object.
    private mutating func member(afterComma: Bool) throws(Failure) {
        skipWhitespace()
        guard peek == .quote else {
            if afterComma && peek == .closeBrace { throw syntax("a trailing comma before '}'") }
            if peek == .apostrophe { throw syntax("keys take double quotes, not single") }
            throw position < bytes.count
                ? unexpected("where a key in double quotes should be")
                : syntax("the object is not closed")
        }
        key.removeAll(keepingCapacity: true)
        try string(capturing: true)
        // Compared as Swift strings, the form every decoder downstream uses: two spellings of one
        // key that those decoders would merge (escaped or not, or canonically equivalent Unicode)
        // are duplicates here too.
        let name = String(decoding: key, as: UTF8.self)
        let top = frames.count - 1
        frames[top].key = name
        guard frames[top].keys.insert(name).inserted else { throw .duplicateKey(path: path()) }
        skipWhitespace()
        guard peek == .colon else {
            throw position < bytes.count
                ? unexpected("where ':' should follow a key") : syntax("the object is not closed")
        }
        position += 1
    }

    /// Where the value being read sits, e.g. `items[2].name`.
    private func path() -> String {
        var text = ""
        for frame in frames {
            if frame.isObject {
                text += text.isEmpty ? frame.key : "." + frame.key
            } else {
                text += "[\(frame.index)]"
            }
        }
        return text
    }

    // MARK: - Scalars

    private static let trueBytes: [UInt8] = Array("true".utf8)
    private static let falseBytes: [UInt8] = Array("false".utf8)
    private static let nullBytes: [UInt8] = Array("null".utf8)

    private mutating func literal(_ word: [UInt8]) throws(Failure) {
        guard bytes.count - position >= word.count else { throw unexpected("where a value should be") }
        for (offset, expected) in word.enumerated() where bytes[position + offset] != expected {
            throw unexpected("where a value should be")
        }
        position += word.count
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    private mutating func number() throws(Failure) {
        let start = position
        if bytes[position] == .minus { position += 1 }
        guard let first = peek, first.isDigit else {
            throw syntax("a digit must follow '-'")
        }
        position += 1
        if first == .digitZero {
            if let next = peek, next.isDigit {
                throw Failure.syntax(offset: start, reason: "numbers may not have leading zeros")
            }
        } else {
            skipDigits()
        }
        if peek == .dot {
            position += 1
            guard let next = peek, next.isDigit else { throw syntax("a digit must follow '.' in a number") }
            skipDigits()
        }
        if peek == .letterE || peek == .capitalE {
            position += 1
            if peek == .plus || peek == .minus { position += 1 }
            guard let next = peek, next.isDigit else { throw syntax("an exponent needs digits") }
            skipDigits()
        }
    }

    /// Reads a string from its opening quote to its closing one; with `capturing`, appends its
    /// decoded UTF-8 to `key`.
    private mutating func string(capturing: Bool) throws(Failure) {
        let start = position
        position += 1
        while position < bytes.count {
            let byte = bytes[position]
            if byte == .quote {
                position += 1
                return
            } else if byte == .backslash {
                try escape(capturing: capturing)
            } else if byte < 0x20 {
                throw syntax(
                    "the control character \(Self.codePoint(UInt32(byte))) must be escaped in a string")
            } else if byte < 0x80 {
                if capturing { key.append(byte) }
                position += 1
            } else {
                try multibyte(capturing: capturing)
            }
        }
        throw Failure.syntax(offset: start, reason: "the string is not closed")
    }

    private mutating func escape(capturing: Bool) throws(Failure) {
        let start = position
        guard position + 1 < bytes.count else {
            throw Failure.syntax(offset: start, reason: "the string ends inside an escape")
        }
        let kind = bytes[position + 1]
        position += 2
        let decoded: UInt8
        switch kind {
        case .quote, .backslash, .slash: decoded = kind
        case .letterB: decoded = 0x08
        case .letterF: decoded = 0x0c
        case .letterN: decoded = 0x0a
        case .letterR: decoded = 0x0d
        case .letterT: decoded = 0x09
        case .letterU:
            let unit = try hex4(escapeStart: start)
            var scalar = unit
            if (0xD800...0xDBFF).contains(unit) {
                let low: UInt32
                if bytes.count - position >= 2 && bytes[position] == .backslash
                    && bytes[position + 1] == .letterU
                {
                    position += 2
                    low = try hex4(escapeStart: position - 2)
                } else {
                    low = 0
                }
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw Failure.syntax(
                        offset: start,
                        reason: "the high surrogate \\u\(Self.hex(unit)) is not followed by a low surrogate")
                }
                scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(unit) {
                throw Failure.syntax(
                    offset: start,
                    reason: "the low surrogate \\u\(Self.hex(unit)) does not follow a high surrogate")
            }
            if capturing { appendUTF8(scalar) }
            return
        default:
            throw Failure.syntax(offset: start, reason: "\\\(Self.describe(kind)) is not a JSON escape")
        }
        if capturing { key.append(decoded) }
    }

    /// The four hex digits after `\u`, either case.
    private mutating func hex4(escapeStart: Int) throws(Failure) -> UInt32 {
        guard bytes.count - position >= 4 else {
            throw Failure.syntax(offset: escapeStart, reason: "\\u needs four hex digits")
        }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case 0x30...0x39: digit = byte - 0x30
            case 0x41...0x46: digit = byte - 0x41 + 10
            case 0x61...0x66: digit = byte - 0x61 + 10
            default: throw Failure.syntax(offset: escapeStart, reason: "\\u needs four hex digits")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    private mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            key.append(UInt8(scalar))
        case 0x80..<0x800:
            key.append(0xC0 | UInt8(scalar >> 6))
            key.append(0x80 | UInt8(scalar & 0x3F))
        case 0x800..<0x10000:
            key.append(0xE0 | UInt8(scalar >> 12))
            key.append(0x80 | UInt8(scalar >> 6 & 0x3F))
            key.append(0x80 | UInt8(scalar & 0x3F))
        default:
            key.append(0xF0 | UInt8(scalar >> 18))
            key.append(0x80 | UInt8(scalar >> 12 & 0x3F))
            key.append(0x80 | UInt8(scalar >> 6 & 0x3F))
            key.append(0x80 | UInt8(scalar & 0x3F))
        }
    }

    /// One well-formed UTF-8 sequence of two to four bytes (Unicode table 3-7): no overlong forms,
    /// no encoded surrogates, nothing above U+10FFFF.
    private mutating func multibyte(capturing: Bool) throws(Failure) {
        let lead = bytes[position]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            high = 0x9F
        case 0xF0:
            length = 4
            low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            high = 0x8F
        default: throw syntax("invalid UTF-8 (byte 0x\(Self.hex(UInt32(lead), width: 2)))")
        }
        guard bytes.count - position >= length else { throw syntax("invalid UTF-8 (a truncated sequence)") }
        for offset in 1..<length {
            let byte = bytes[position + offset]
            guard byte >= low && byte <= high else { throw syntax("invalid UTF-8") }
            low = 0x80
            high = 0xBF
        }
        if capturing { key.append(contentsOf: bytes[position..<position + length]) }
        position += length
    }

    // MARK: - Bytes

    private var peek: UInt8? {
        position < bytes.count ? bytes[position] : nil
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0a, 0x0d, 0x09: position += 1
            default: return
            }
        }
    }

    private mutating func skipDigits() {
        while position < bytes.count && bytes[position].isDigit { position += 1 }
    }

    private func syntax(_ reason: String) -> Failure {
        .syntax(offset: position, reason: reason)
    }

    /// A failure for the byte at `position`, naming the usual non-JSON habit it comes from.
    private func unexpected(_ context: String) -> Failure {
        guard position < bytes.count else { return syntax("unexpected end of the input") }
        let byte = bytes[position]
        switch byte {
        case .slash: return syntax("comments are not allowed")
        case .apostrophe: return syntax("strings take double quotes, not single")
        case .capitalN, .capitalI: return syntax("NaN and Infinity are not JSON numbers")
        case .plus: return syntax("numbers may not start with '+'")
        case .dot: return syntax("numbers must start with a digit, not '.'")
        default: return syntax("unexpected \(Self.describe(byte)) \(context)")
        }
    }

    private static func describe(_ byte: UInt8) -> String {
        (0x21..<0x7f).contains(byte)
            ? "'\(String(decoding: [byte], as: UTF8.self))'" : "byte 0x\(hex(UInt32(byte), width: 2))"
    }

    private static func codePoint(_ value: UInt32) -> String {
        "U+" + hex(value)
    }

    private static func hex(_ value: UInt32, width: Int = 4) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

extension UInt8 {
    fileprivate static let quote: UInt8 = 0x22
    fileprivate static let apostrophe: UInt8 = 0x27
    fileprivate static let plus: UInt8 = 0x2b
    fileprivate static let comma: UInt8 = 0x2c
    fileprivate static let minus: UInt8 = 0x2d
    fileprivate static let dot: UInt8 = 0x2e
    fileprivate static let slash: UInt8 = 0x2f
    fileprivate static let digitZero: UInt8 = 0x30
    fileprivate static let digitNine: UInt8 = 0x39
    fileprivate static let colon: UInt8 = 0x3a
    fileprivate static let capitalE: UInt8 = 0x45
    fileprivate static let capitalI: UInt8 = 0x49
    fileprivate static let capitalN: UInt8 = 0x4e
    fileprivate static let openBracket: UInt8 = 0x5b
    fileprivate static let backslash: UInt8 = 0x5c
    fileprivate static let closeBracket: UInt8 = 0x5d
    fileprivate static let letterB: UInt8 = 0x62
    fileprivate static let letterE: UInt8 = 0x65
    fileprivate static let letterF: UInt8 = 0x66
    fileprivate static let letterN: UInt8 = 0x6e
    fileprivate static let letterR: UInt8 = 0x72
    fileprivate static let letterT: UInt8 = 0x74
    fileprivate static let letterU: UInt8 = 0x75
    fileprivate static let openBrace: UInt8 = 0x7b
    fileprivate static let closeBrace: UInt8 = 0x7d

    fileprivate var isDigit: Bool { self >= .digitZero && self <= .digitNine }
}

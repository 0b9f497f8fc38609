import FoundationEssentials
import Testing

@testable import GraceAPI
@testable import GraceHTTP

/// The strict JSON validator: exactly RFC 8259, and one reading of every document.
@Suite struct StrictJSONTests {
    static func check(_ text: String) -> StrictJSON.Failure? {
        StrictJSON.check(Array(text.utf8))
    }

    static func isSyntaxFailure(_ failure: StrictJSON.Failure?) -> Bool {
        if case .syntax = failure { return true }
        return false
    }

    // MARK: - Valid documents

    @Test(arguments: [
        "{}", "[]", "0", "-0", "1", "-1", "1e5", "1E5", "1.5E-3", "1.5e+3", "-0.0", "0e0",
        "123456789012345678901234567890",
        "true", "false", "null", "\"\"", "\"text\"", " \t\r\n{} \t\r\n",
        "[1, 2.5, \"x\", true, false, null, {}, []]",
        #"{"dryRun": false, "method": "flr", "deadlineSeconds": 30}"#,
        #"{"outer": {"inner": {"deep": [1, {"a": null}]}}, "items": [{"name": "a"}, {"name": "a"}]}"#,
        #"{"a": 1, "A": 2, "a ": 3, "": 4}"#,
        #"[{"a": 1}, {"a": 1}]"#,
    ])
    func acceptsValidDocuments(_ text: String) {
        #expect(Self.check(text) == nil, "\(text)")
    }

    @Test func acceptsEveryEscape() {
        #expect(
            Self.check(#"["\" \\ \/ \b \f \n \r \t \u0000 \u00e9 \u00E9 \uFFFF \uD83D\uDE00 \uDBFF\uDFFF"]"#)
                == nil)
        #expect(Self.check(#"{"\"\\\/\b\f\n\r\t\u0041": 1}"#) == nil)
    }

    @Test func acceptsUTF8() {
        #expect(Self.check("[\"é ü 中文 😀 \u{10FFFF} \u{FEFF} \u{2028}\"]") == nil)
        #expect(Self.check("{\"clé\": \"valeur\", \"😀\": 1}") == nil)
    }

    @Test func acceptsNestingUpToTheLimit() {
        let depth = StrictJSON.maximumDepth
        #expect(
            Self.check(String(repeating: "[", count: depth) + String(repeating: "]", count: depth)) == nil)
        let objects = String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)
        #expect(Self.check(objects) == nil)
    }

    // MARK: - Duplicate keys

    @Test func refusesADuplicateKey() {
        let failure = Self.check(#"{"dryRun": false, "dryRun": true}"#)
        #expect(failure == .duplicateKey(path: "dryRun"))
        #expect(failure?.description == "the key 'dryRun' appears twice")
    }

    @Test func comparesDecodedKeys() {
        #expect(Self.check(#"{"a":1,"\u0061":2}"#) == .duplicateKey(path: "a"))
        #expect(Self.check(#"{"\u00e9":1,"é":2}"#) == .duplicateKey(path: "é"))
        #expect(Self.check(#"{"\ud83d\ude00":1,"😀":2}"#) == .duplicateKey(path: "😀"))
        #expect(Self.check(#"{"a\/b":1,"a/b":2}"#) == .duplicateKey(path: "a/b"))
        // Swift strings, and so every decoder after this check, treat canonically equivalent keys as one.
        #expect(Self.check("{\"\u{E9}\":1,\"e\u{301}\":2}") == .duplicateKey(path: "e\u{301}"))
    }

    @Test func namesTheDuplicateKeysPath() {
        #expect(Self.check(#"{"outer": {"inner": 1, "inner": 2}}"#) == .duplicateKey(path: "outer.inner"))
        #expect(
            Self.check(#"{"items": [{"name": 1}, {"name": 2}, {"name": 3, "name": 4}]}"#)
                == .duplicateKey(path: "items[2].name"))
        #expect(
            Self.check(#"[0, [1, {"a": {"b": [{"c": 1, "c": 2}]}}]]"#)
                == .duplicateKey(path: "[1][1].a.b[0].c"))
        #expect(Self.check(#"{"a": {"x": 1}, "b": 2, "a": 3}"#) == .duplicateKey(path: "a"))
        #expect(
            Self.check(#"{"a": 1, "b": {"c": 2}, "d": [{"e": 1}, {"e": 2, "f": {"g": 1, "g": 2}}]}"#)
                == .duplicateKey(path: "d[1].f.g"))
    }

    @Test func keysOfSiblingObjectsDoNotCollide() {
        #expect(Self.check(#"{"a": {"k": 1}, "b": {"k": 2}, "k": 3}"#) == nil)
        #expect(Self.check(#"[{"k": 1}, {"k": 2}, [{"k": 3}]]"#) == nil)
    }

    // MARK: - Syntax

    @Test(
        arguments: [
            ("", 0), (" ", 1), ("\n\t", 2),
            ("{} x", 3), ("{}{}", 2), ("1 2", 2), ("[1] ]", 4), ("nullx", 4),
            ("[1,]", 3), (#"{"a":1,}"#, 7), ("[,1]", 1), ("[1,,2]", 3), ("{,}", 1),
            ("// c\n{}", 0), ("{} /* c */", 3), ("[1 # c\n]", 3),
            ("'a'", 0), ("{'a': 1}", 1),
            ("NaN", 0), ("Infinity", 0), ("-Infinity", 1), ("[nan]", 1),
            ("01", 0), ("-01", 0), ("00", 0), ("1.", 2), (".5", 0), ("+1", 0), ("1e", 2), ("1e+", 3),
            ("-", 1),
            ("1.e5", 2), ("0x10", 1), ("1_000", 1),
            ("tru", 0), ("True", 0), ("nul", 0), ("[true false]", 6),
            ("{", 1), ("[", 1), ("[1", 2), (#"{"a""#, 4), (#"{"a":"#, 5), (#"{"a" 1}"#, 5), (#"{1: 2}"#, 1),
            ("\"abc", 0), (#"["a\"]"#, 1),
            (#"["\x"]"#, 2), (#"["\u12"]"#, 2), (#"["\u12G4"]"#, 2), (#"["\U0041"]"#, 2), (#"["\"#, 2),
            (#"["\uD800"]"#, 2), (#"["\uDC00"]"#, 2), (#"["\uD800\u0041"]"#, 2), (#"["\uDBFF\uDBFF"]"#, 2),
            (#"["\uDE00\uD83D"]"#, 2), (#"{"\uD800": 1}"#, 2),
            ("[\"a\u{0}b\"]", 3), ("[\"tab\there\"]", 5), ("[\"line\nbreak\"]", 6), ("[\"\u{1F}\"]", 2),
            ("\u{FEFF}{}", 0), ("{}\u{0}", 2), ("[1]\u{A0}", 3),
        ] as [(String, Int)])
    func refusesInvalidSyntax(_ text: String, _ offset: Int) {
        let failure = Self.check(text)
        guard case .syntax(let at, let reason) = failure else {
            Issue.record("\(text.debugDescription) gave \(String(describing: failure))")
            return
        }
        #expect(at == offset, "\(text.debugDescription): \(reason)")
        #expect(!reason.isEmpty)
    }

    @Test func namesTheUsualHabits() {
        let cases: [(String, String)] = [
            ("[1,]", "trailing comma"), (#"{"a":1,}"#, "trailing comma"), ("{} // c", "comments"),
            ("'a'", "double quotes"), ("{'a': 1}", "double quotes"), ("NaN", "NaN"), ("01", "leading zero"),
            ("+1", "'+'"), (".5", "'.'"), ("{} x", "after the JSON value"), ("", "end of the input"),
            (#"["\uD800"]"#, "surrogate"), ("[\"\u{1}\"]", "U+0001"),
        ]
        for (text, mention) in cases {
            let description = Self.check(text)?.description ?? "accepted"
            #expect(description.contains(mention), "\(text.debugDescription): \(description)")
        }
        #expect(Self.check("{} x")?.description.hasPrefix("invalid JSON at byte 3: ") == true)
    }

    @Test func refusesInvalidUTF8() {
        let sequences: [[UInt8]] = [
            [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xC2], [0xC2, 0x41], [0xE0, 0x80, 0x80],
            [0xE0, 0x9F, 0xBF],
            [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF], [0xE1, 0x80], [0xF0, 0x80, 0x80, 0x80],
            [0xF0, 0x8F, 0xBF, 0xBF],
            [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0xFE],
            [0xFF],
        ]
        for sequence in sequences {
            let inString = [0x5B, 0x22, 0x61] + sequence + [0x22, 0x5D]
            let failure = StrictJSON.check(inString)
            #expect(failure == .syntax(offset: 3, reason: reason(failure)), "\(sequence)")
            #expect(Self.isSyntaxFailure(StrictJSON.check(sequence)), "\(sequence) alone")
        }
        let valid: [[UInt8]] = [
            [0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF], [0xEE, 0x80, 0x80],
            [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF],
        ]
        for sequence in valid {
            #expect(StrictJSON.check([0x22] + sequence + [0x22]) == nil, "\(sequence)")
        }
    }

    private func reason(_ failure: StrictJSON.Failure?) -> String {
        if case .syntax(_, let reason) = failure { return reason }
        return ""
    }

    // MARK: - Depth and size

    @Test func refusesNestingBeyondTheLimit() {
        let depth = StrictJSON.maximumDepth + 1
        #expect(
            Self.check(String(repeating: "[", count: depth) + String(repeating: "]", count: depth))
                == .tooDeep)
        #expect(
            Self.check(
                String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth))
                == .tooDeep)
        #expect(StrictJSON.Failure.tooDeep.description.contains("32"))
    }

    @Test func aHundredThousandBracketsFailQuickly() {
        #expect(StrictJSON.check([UInt8](repeating: 0x5B, count: 100_000)) == .tooDeep)
        #expect(StrictJSON.check([UInt8](repeating: 0x7B, count: 100_000)) != nil)
        let objects = Array(String(repeating: #"{"a":"#, count: 100_000).utf8)
        #expect(StrictJSON.check(objects) == .tooDeep)
    }

    /// The bounds below catch a check that stopped being one pass (a quadratic one would take minutes
    /// on these inputs), not a slow machine: they are ten times what the two-core CI kind needs.
    @Test func aMegabyteArrayIsCheckedInOnePass() {
        var text = "["
        var index = 0
        while text.utf8.count < 1 << 20 {
            text += #"{"id": \#(index), "name": "gpu-\#(index)\u00e9", "ok": true, "v": [-1.5e3, null]},"#
            index += 1
        }
        text += "0]"
        let bytes = Array(text.utf8)
        let clock = ContinuousClock()
        var failure: StrictJSON.Failure?
        let elapsed = clock.measure { failure = StrictJSON.check(bytes) }
        #expect(failure == nil)
        #expect(elapsed < .seconds(5), "\(elapsed) for \(bytes.count) bytes")
    }

    @Test func anObjectOfManyKeysIsCheckedInOnePass() {
        let members = (0..<50_000).map { #""key-\#($0)": \#($0)"# }
        let bytes = Array(("{" + members.joined(separator: ",") + "}").utf8)
        let clock = ContinuousClock()
        var failure: StrictJSON.Failure?
        let elapsed = clock.measure { failure = StrictJSON.check(bytes) }
        #expect(failure == nil)
        #expect(elapsed < .seconds(5), "\(elapsed) for \(bytes.count) bytes")
        let repeated = Array(("{" + members.joined(separator: ",") + #", "key-49999": 0}"#).utf8)
        #expect(StrictJSON.check(repeated) == .duplicateKey(path: "key-49999"))
    }

    // MARK: - Agreement with JSONDecoder

    /// Everything accepted here must also be readable by the decoder the service uses afterwards.
    @Test(arguments: [
        #"{"dryRun": false, "method": "flr"}"#, #"[1, -0, 1e5, 1.5E-3, "\u00e9\ud83d\ude00"]"#,
        #"{"a": {"b": [null, true, {"c": "\"\\\/\b\f\n\r\t"}]}}"#,
    ])
    func acceptedDocumentsDecode(_ text: String) throws {
        #expect(Self.check(text) == nil)
        struct AnyJSON: Decodable {
            init(from decoder: any Decoder) throws {}
        }
        _ = try JSONDecoder().decode(AnyJSON.self, from: Data(text.utf8))
    }
}

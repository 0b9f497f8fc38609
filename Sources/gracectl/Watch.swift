import ArgumentParser
import FoundationEssentials
import GraceClient

#if canImport(Glibc)
    import Glibc
#endif

/// `gracectl watch`: graced's event stream, one line per event, until interrupted (or `--seconds`).
struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Print graced's events as they happen, one line each.",
        discussion: """
            Each line: the event's id, time, type, GPU and job (- when none), then its data as JSON; \
            with --output json, the event's whole object as graced sent it. Resume after a disconnect \
            with --after and the last id printed.
            """)
    @OptionGroup(title: "Connection Options") var server: ServerOptions
    @OptionGroup(title: "Output Options") var output: OutputOptions
    @Option(help: "Only the events of this GPU (DDDD:BB:DD.F).") var gpu: String?
    @Option(help: "Only events of these types, comma-separated (e.g. job.finished,device.state).")
    var types: String?
    @Option(help: "Resume after this event id.") var after: Int64?
    @Option(help: "Stop after this many seconds.") var seconds: Int?

    func run() throws {
        var query: [String] = []
        if let gpu { query.append("gpu=" + Self.escaped(gpu)) }
        if let types { query.append("types=" + Self.escaped(types)) }
        if let after { query.append("lastEventId=\(after)") }
        if let seconds { query.append("maxSeconds=\(seconds)") }
        let path = "/events" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        let session = try server.session()
        let answer: BlockingHTTPClient.Response?
        do {
            answer = try session.client.streamEvents(path) { event in
                // JSON: each event's object as graced sent it, one per line (JSON Lines).
                print(output.isJSON ? event.data : Self.line(event))
                fflush(nil)  // one line at a time, also into a pipe
                return true
            }
        } catch {
            throw CommandFailure("\(error)")
        }
        if let answer {
            throw CommandFailure(session.refusal(answer, request: "GET /events"))
        }
    }

    /// `12 2026-11-21T06:34:00.123Z job.phase 0009:01:00.0 <job> {"phase":"resetting"}`
    static func line(_ event: ServerSentEvent) -> String {
        struct Envelope: Decodable {
            var at: String
            var gpu: String?
            var job: String?
        }
        let envelope = try? JSONDecoder().decode(Envelope.self, from: Data(event.data.utf8))
        let data = Self.dataMember(of: event.data) ?? event.data
        return [
            event.id ?? "-", envelope?.at ?? "-", event.event, envelope?.gpu ?? "-", envelope?.job ?? "-",
            data,
        ].joined(separator: " ")
    }

    /// The text of the `"data":` member of graced's event JSON: its keys are sorted, so `data` comes
    /// second and the envelope's own `gpu` is the last `,"gpu":` (a payload may hold one too).
    static func dataMember(of json: String) -> String? {
        guard let start = json.firstRange(of: #","data":"#) else { return nil }
        var end: Range<String.Index>?
        var rest = json[start.upperBound...]
        while let found = rest.firstRange(of: #","gpu":"#) {
            end = found
            rest = rest[found.upperBound...]
        }
        guard let end else { return nil }
        return String(json[start.upperBound..<end.lowerBound])
    }

    /// Percent-encodes all but unreserved characters, commas and colons.
    static func escaped(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            let character = Character(Unicode.Scalar(byte))
            if character.isLetter && byte < 0x80 || character.isNumber && byte < 0x80
                || "-._~,:".utf8.contains(byte)
            {
                out.append(character)
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return out
    }
}

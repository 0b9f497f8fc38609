#if canImport(Glibc)
    import Glibc
#endif

extension BlockingHTTPClient {
    /// GETs an event stream and calls `onEvent` for each event as it arrives, until the server ends
    /// the stream or `onEvent` returns false. Returns nil after a stream, or the whole answer when
    /// the server answered with something else (a problem, say).
    public func streamEvents(
        _ path: String, headers: [(String, String)] = [], onEvent: (ServerSentEvent) -> Bool
    ) throws(ConnectionError) -> Response? {
        let connection = try openConnection()
        if let failure = connection.sendAll(Array(try head("GET", path, body: nil, headers).utf8)) {
            throw ConnectionError(description: "sending to \(server): \(failure.reason)", code: failure.code)
        }
        var received: [UInt8] = []
        var streaming = false
        var chunks = ChunkDecoder()
        var text = ""
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = try connection.receive(&buffer, from: server, haveSome: false)
            if count == 0 { break }
            received += buffer[0..<count]
            if !streaming {
                guard let headEnd = Self.find([13, 10, 13, 10], in: received[...]) else { continue }
                let head = Self.head(of: received[..<headEnd])
                guard head.status == 200,
                    head.header("Content-Type")?.lowercased().hasPrefix("text/event-stream") == true,
                    head.header("Transfer-Encoding")?.lowercased().contains("chunked") == true
                else { continue }  // not a stream: read it whole
                streaming = true
                received.removeFirst(headEnd + 4)
            }
            let (bytes, ended) = chunks.feed(&received)
            text += String(decoding: bytes, as: UTF8.self)
            while let end = text.firstRange(of: "\n\n") {
                let block = text[..<end.lowerBound]
                if let event = ServerSentEvent.parse(block: block), !onEvent(event) { return nil }
                text.removeSubrange(..<end.upperBound)
            }
            if ended { return nil }
        }
        return streaming ? nil : try parse(received)
    }
}

extension BlockingHTTPClient {
    /// The status and headers of an answer's head (without its blank line); the body is read apart.
    static func head(of bytes: ArraySlice<UInt8>) -> Response {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\r\n")
        let statusLine = lines.first?.split(separator: " ") ?? []
        let status = statusLine.count >= 2 ? Int(statusLine[1]) ?? 0 : 0
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingSpaces)
        }
        return Response(status: status, headers: headers, body: [])
    }
}

/// RFC 9112 §7.1 chunked coding, decoded as bytes arrive.
struct ChunkDecoder {
    /// Takes the complete chunks off the front of `bytes`; returns their data and whether the last
    /// chunk came.
    mutating func feed(_ bytes: inout [UInt8]) -> (data: [UInt8], ended: Bool) {
        var data: [UInt8] = []
        while let lineEnd = BlockingHTTPClient.find([13, 10], in: bytes[...]) {
            let sizeText = String(decoding: bytes[..<lineEnd], as: UTF8.self).prefix { $0 != ";" }
            guard let size = Int(sizeText.trimmingSpaces, radix: 16) else { return (data, true) }
            if size == 0 { return (data, true) }
            guard bytes.count >= lineEnd + 2 + size + 2 else { break }
            data += bytes[(lineEnd + 2)..<(lineEnd + 2 + size)]
            bytes.removeFirst(lineEnd + 2 + size + 2)
        }
        return (data, false)
    }
}

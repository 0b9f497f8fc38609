/// The header fields of a connection's first request, read from bytes peeked off its socket
/// exactly as libmicrohttpd 0.9.75 will read them (connection.c: `get_next_header_line`,
/// `process_header_line`, `process_broken_line`), so that `HeadGate` judges the same
/// `Content-Length` that MHD is about to parse.
///
/// MHD's reading, mirrored here: a line ends at CRLF or at a bare LF; each line is a C string, so
/// it ends at its first NUL; empty lines before the request line are skipped; a field line that
/// starts with a space or tab continues the previous field's value (its leading blanks dropped,
/// nothing inserted); a value loses its leading blanks but keeps its trailing ones.
package enum RequestHead {
    enum Reading {
        /// The bytes end before the head does.
        case incomplete
        /// The whole head is there: its request line, and its fields as MHD will give them to the
        /// handler.
        case complete(requestLine: ArraySlice<UInt8>, HTTPHeaders)
        /// A field line without a colon: MHD answers it with its own 400, once, and reads no
        /// further (that path does not send its status line twice).
        case malformed
    }

    static func read(_ bytes: ArraySlice<UInt8>) -> Reading {
        var position = bytes.startIndex
        var requestLine: ArraySlice<UInt8>?
        var fields: [(name: ArraySlice<UInt8>, value: [UInt8])] = []
        while let line = nextLine(bytes, from: &position) {
            let text = line.prefix { $0 != 0 }
            guard let requestLine else {
                requestLine = text.isEmpty ? nil : text
                continue
            }
            guard let first = text.first else {
                return .complete(
                    requestLine: requestLine,
                    HTTPHeaders(fields.map { (decode($0.name), decode($0.value[...])) }))
            }
            if isBlank(first), !fields.isEmpty {
                fields[fields.count - 1].value += text.drop(while: isBlank)
                continue
            }
            guard let colon = text.firstIndex(of: UInt8(ascii: ":")) else { return .malformed }
            fields.append((text[..<colon], Array(text[(colon + 1)...].drop(while: isBlank))))
        }
        return .incomplete
    }

    /// The request line (the first line that is not empty), if a whole one has arrived.
    static func requestLine(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        var position = bytes.startIndex
        while let line = nextLine(bytes, from: &position) {
            let text = line.prefix { $0 != 0 }
            if !text.isEmpty { return text }
        }
        return nil
    }

    /// The next line without its terminator, moving `position` past it; nil if no line ends
    /// before the bytes do (a CR as the last byte may yet be followed by its LF).
    private static func nextLine(_ bytes: ArraySlice<UInt8>, from position: inout Int) -> ArraySlice<UInt8>? {
        guard let feed = bytes[position...].firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let end = feed > position && bytes[feed - 1] == UInt8(ascii: "\r") ? feed - 1 : feed
        defer { position = feed + 1 }
        return bytes[position..<end]
    }

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    /// As the handler receives MHD's fields: invalid UTF-8 becomes U+FFFD, which no digit test or
    /// field name comparison mistakes for anything else.
    private static func decode(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }
}

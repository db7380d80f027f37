/// Reads a `multipart/byteranges` body (RFC 9110 §14.6, RFC 2046 §5.1), the answer to a Range
/// request for several ranges, as it streams in: each part's `Content-Range`, then its bytes.
///
/// A value-type state machine fed chunks cut anywhere. The boundary is taken from the first
/// delimiter line (the `Content-Type` header that names it has already said the body is
/// multipart); each part's length comes from its `Content-Range`, so a boundary string inside
/// the data is never looked for. Anything else (a part without a readable `Content-Range`, an
/// over-long header line, bytes where a delimiter belongs, a body that ends inside a part)
/// throws ``Malformed``.
struct MultipartByteranges {
    enum Event {
        /// A part starts: these bytes of the file follow.
        case part(ContentRange)
        /// Bytes of the current part, in order.
        case data(UnsafeRawBufferPointer)
        /// The current part has all its bytes.
        case partEnded
    }

    struct Malformed: Error, Equatable {
        let reason: String
    }

    private enum State {
        /// Before the first delimiter: empty lines only.
        case preamble
        /// A part's header lines; its `Content-Range` once read.
        case headers(ContentRange?)
        case body(remaining: Int64)
        /// After a part: the line break that ends it, then a delimiter or the close delimiter.
        case delimiter(sawLineBreak: Bool)
        case closed
    }

    private var state = State.preamble
    private var boundary: [UInt8] = []
    private var line: [UInt8] = []
    /// Bytes after the close delimiter (an epilogue), ignored up to a bound.
    private var epilogue = 0

    /// A header or delimiter line longer than this is not a multipart body we asked for.
    static let maximumLineLength = 1024

    /// Whether the close delimiter has been read.
    var isComplete: Bool {
        if case .closed = state { return true }
        return false
    }

    /// Takes the next bytes of the body, calling `emit` for what they complete.
    mutating func consume(_ bytes: UnsafeRawBufferPointer, _ emit: (Event) throws -> Void) throws {
        var index = 0
        while index < bytes.count {
            if case .body(let remaining) = state {
                let count = Int(min(Int64(bytes.count - index), remaining))
                try emit(.data(UnsafeRawBufferPointer(rebasing: bytes[index..<(index + count)])))
                index += count
                if remaining == Int64(count) {
                    state = .delimiter(sawLineBreak: false)
                    try emit(.partEnded)
                } else {
                    state = .body(remaining: remaining - Int64(count))
                }
                continue
            }
            if case .closed = state {
                epilogue += bytes.count - index
                guard epilogue <= Self.maximumLineLength else { throw Malformed(reason: "more than a line after the close delimiter") }
                return
            }
            let byte = bytes[index]
            index += 1
            guard byte == UInt8(ascii: "\n") else {
                line.append(byte)
                guard line.count <= Self.maximumLineLength else { throw Malformed(reason: "a line of more than 1024 bytes") }
                continue
            }
            if line.last == UInt8(ascii: "\r") {
                line.removeLast()
            }
            let text = line
            line.removeAll(keepingCapacity: true)
            try take(line: text, emit)
        }
    }

    /// One line outside a part's data.
    private mutating func take(line text: [UInt8], _ emit: (Event) throws -> Void) throws {
        switch state {
        case .preamble:
            if text.isEmpty { return }
            guard text.count > 2, text.starts(with: [0x2D, 0x2D]) else { throw Malformed(reason: "no boundary delimiter first") }
            boundary = Array(text.dropFirst(2))
            state = .headers(nil)
        case .headers(let range):
            guard !text.isEmpty else {
                guard let range else { throw Malformed(reason: "a part without a Content-Range") }
                // `ContentRange` holds at least one byte (`last >= first`).
                state = .body(remaining: range.last - range.first + 1)
                try emit(.part(range))
                return
            }
            let header = String(decoding: text, as: UTF8.self)
            guard let colon = header.firstIndex(of: ":") else { throw Malformed(reason: "a part header without a colon") }
            guard header[..<colon].lowercased() == "content-range" else { return }
            guard range == nil, let parsed = ContentRange(header: String(header[header.index(after: colon)...])) else {
                throw Malformed(reason: "a part with an unreadable or second Content-Range")
            }
            state = .headers(parsed)
        case .delimiter(let sawLineBreak):
            if text.isEmpty, !sawLineBreak {
                // The line break that ends the part's data.
                state = .delimiter(sawLineBreak: true)
                return
            }
            if text == [0x2D, 0x2D] + boundary {
                state = .headers(nil)
            } else if text == [0x2D, 0x2D] + boundary + [0x2D, 0x2D] {
                state = .closed
            } else {
                throw Malformed(reason: "no boundary delimiter after a part")
            }
        case .body, .closed:
            break
        }
    }

    /// The body ended: it must have ended with the close delimiter.
    func finish() throws {
        guard isComplete else { throw Malformed(reason: "the body ends before its close delimiter") }
    }
}

@testable import Autoupdate
import Foundation
import Testing

/// The multipart/byteranges reader, without I/O: the parts come out the same however the body is
/// cut into chunks, and every malformed body is refused naming what is wrong.
@Suite("Multipart byteranges")
struct MultipartByterangesTests {
    /// What the reader gave: each part's range and bytes.
    struct Part: Equatable {
        var first: Int64
        var last: Int64
        var bytes: [UInt8]
    }

    static func body(
        _ parts: [(Int64, [UInt8])], boundary: String = "00000000000000000042", size: Int64 = 1000, preamble: String = "\r\n",
        header: String = "Content-Range"
    ) -> [UInt8] {
        var body = Array(preamble.utf8)
        for (first, bytes) in parts {
            body += Array(
                "--\(boundary)\r\nContent-Type: application/zip\r\n\(header): bytes \(first)-\(first + Int64(bytes.count) - 1)/\(size)\r\n\r\n"
                    .utf8)
            body += bytes + Array("\r\n".utf8)
        }
        return body + Array("--\(boundary)--\r\n".utf8)
    }

    /// Feeds `body` in chunks of `size` bytes.
    static func read(_ body: [UInt8], chunk size: Int) throws -> [Part] {
        var reader = MultipartByteranges()
        var parts: [Part] = []
        var ended = 0
        for start in stride(from: 0, to: body.count, by: size) {
            try body[start..<min(start + size, body.count)].withUnsafeBytes { bytes in
                try reader.consume(bytes) { event in
                    switch event {
                    case .part(let range): parts.append(Part(first: range.first, last: range.last, bytes: []))
                    case .data(let data): parts[parts.count - 1].bytes += data
                    case .partEnded: ended += 1
                    }
                }
            }
        }
        try reader.finish()
        #expect(ended == parts.count)
        return parts
    }

    @Test("parts come out whole however the body is cut (data that holds the boundary and CRLFs included)")
    func chunking() throws {
        let tricky = Array("\r\n--00000000000000000042\r\n\r\n".utf8)
        let parts: [(Int64, [UInt8])] = [(0, Array(0..<200)), (500, tricky), (990, [7, 8, 9, 10])]
        let body = Self.body(parts)
        let expected = parts.map { Part(first: $0.0, last: $0.0 + Int64($0.1.count) - 1, bytes: $0.1) }
        for size in [1, 2, 3, 7, 64, body.count] {
            #expect(try Self.read(body, chunk: size) == expected, "chunks of \(size)")
        }
        // Without a preamble line break, and the header's name in another case: the same.
        #expect(try Self.read(Self.body(parts, preamble: "", header: "content-RANGE"), chunk: 5) == expected)
    }

    @Test(
        "malformed bodies are refused, naming the fault",
        arguments: [
            ("a part without a Content-Range", "\r\n--b\r\nContent-Type: x\r\n\r\nabc\r\n--b--\r\n"),
            ("an unreadable Content-Range", "--b\r\nContent-Range: bytes 5-2/10\r\n\r\nabc\r\n--b--\r\n"),
            ("two Content-Ranges", "--b\r\nContent-Range: bytes 0-2/10\r\nContent-Range: bytes 0-2/10\r\n\r\nabc\r\n--b--\r\n"),
            ("no delimiter first", "hello\r\n--b\r\n"),
            ("bytes where the delimiter belongs", "--b\r\nContent-Range: bytes 0-2/10\r\n\r\nabcdef\r\n--b--\r\n"),
            ("another boundary", "--b\r\nContent-Range: bytes 0-2/10\r\n\r\nabc\r\n--c--\r\n"),
            ("cut inside a part", "--b\r\nContent-Range: bytes 0-9/10\r\n\r\nabc"),
            ("no close delimiter", "--b\r\nContent-Range: bytes 0-2/10\r\n\r\nabc\r\n"),
            ("a header line without a colon", "--b\r\nContent-Range bytes 0-2/10\r\n\r\nabc\r\n--b--\r\n"),
        ])
    func malformed(label: String, text: String) {
        #expect(throws: MultipartByteranges.Malformed.self, "\(label)") { _ = try Self.read(Array(text.utf8), chunk: 4) }
    }

    @Test("a line longer than 1 KiB, or a long epilogue, is refused (a body that is not what was asked for)")
    func bounds() {
        let long = "--b\r\nX-Filler: " + String(repeating: "x", count: 2000) + "\r\n"
        #expect(throws: MultipartByteranges.Malformed.self) { _ = try Self.read(Array(long.utf8), chunk: 100) }
        let epilogue = "--b\r\nContent-Range: bytes 0-2/10\r\n\r\nabc\r\n--b--\r\n" + String(repeating: "e", count: 5000)
        #expect(throws: MultipartByteranges.Malformed.self) { _ = try Self.read(Array(epilogue.utf8), chunk: 100) }
    }
}

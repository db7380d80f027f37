@testable import Autoupdate
import AutoupdateTestSupport
import Dispatch
import Foundation
import Testing

/// Decodes `input` split at seeded random boundaries (1-byte pieces when `seed` is 0).
func decode(_ decoder: any StreamDecoder, _ input: [UInt8], seed: UInt64) throws -> [UInt8] {
    var output: [UInt8] = []
    var random = SeededRandom(seed: seed)
    var index = 0
    while index < input.count {
        let size = seed == 0 ? 1 : Int.random(in: 1...max(1, min(70_000, input.count - index)), using: &random)
        try input[index..<min(index + size, input.count)].withUnsafeBytes { chunk in
            try decoder.decode(chunk) { output += $0 }
        }
        index += size
    }
    try decoder.finish { output += $0 }
    return output
}

@Suite("Decoders: gzip, bzip2")
struct DecoderTests {
    let folder: TemporaryDirectory
    let plain: [UInt8]

    init() throws {
        folder = try TemporaryDirectory()
        // Compressible text and incompressible noise, so blocks of every kind appear.
        plain =
            Array(String(repeating: "autoupdate streams archives while they download. ", count: 4_000).utf8)
            + Fixtures.randomBytes(count: 100_000, seed: 5)
        try Data(plain).write(to: folder.url.appending(path: "plain"))
    }

    func file(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: folder.url.appending(path: name)))
    }

    /// zlib on the calling thread, and the same on a decoding thread of its own.
    static let gzipDecoders = ["serial", "pipelined"]

    static func gzipDecoder(_ kind: String) throws -> any StreamDecoder {
        kind == "serial" ? try GzipDecoder() : PipelinedDecoder { try GzipDecoder() }
    }

    @Test("gzip output of the gzip tool decodes identically at any chunking", arguments: gzipDecoders, [0, 1, 2, 3] as [UInt64])
    func gzipChunkInvariance(kind: String, seed: UInt64) async throws {
        try await shell("gzip -9 -c plain > plain.gz", in: folder.url)
        let input = try file("plain.gz")
        let output = try await onDedicatedThread { try decode(Self.gzipDecoder(kind), input, seed: seed) }
        #expect(output == plain)
    }

    @Test("multi-member gzip decodes every member", arguments: gzipDecoders)
    func gzipMultiMember(kind: String) async throws {
        try await shell("head -c 1000 plain | gzip -c > two.gz && tail -c +1001 plain | gzip -1 -c >> two.gz", in: folder.url)
        #expect(try decode(Self.gzipDecoder(kind), file("two.gz"), seed: 9) == plain)
    }

    @Test("zero padding after the last member is accepted, other trailing data is not", arguments: gzipDecoders)
    func gzipTrailing(kind: String) async throws {
        try await shell("gzip -c plain > p.gz", in: folder.url)
        let gz = try file("p.gz")
        #expect(try decode(Self.gzipDecoder(kind), gz + [UInt8](repeating: 0, count: 4096), seed: 4) == plain)
        #expect {
            try decode(Self.gzipDecoder(kind), gz + Array("garbage".utf8), seed: 4)
        } throws: { ($0 as? AutoupdateError)?.message.contains("unexpected data after gzip member 1") == true }
    }

    @Test("a corrupt gzip trailer is a checksum mismatch", arguments: gzipDecoders, [8, 4] as [Int])
    func gzipTrailerCorruption(kind: String, fromEnd: Int) async throws {
        try await shell("gzip -c plain > p.gz", in: folder.url)
        var gz = try file("p.gz")
        gz[gz.count - fromEnd] ^= 0x55
        #expect {
            try decode(Self.gzipDecoder(kind), gz, seed: 1)
        } throws: { error in
            guard let error = error as? AutoupdateError else { return false }
            return error.code == .checksumMismatch && error.message.contains("gzip member 1 is corrupt")
        }
    }

    @Test("truncated gzip fails at every offset, never decodes short", arguments: gzipDecoders)
    func gzipTruncation(kind: String) async throws {
        try await shell("gzip -c plain > p.gz", in: folder.url)
        let gz = try file("p.gz")
        for cut in stride(from: 1, to: gz.count, by: max(1, gz.count / 40)) + [gz.count - 1, 2, 10] {
            #expect(throws: AutoupdateError.self, "cut at \(cut)") {
                try decode(Self.gzipDecoder(kind), Array(gz[..<cut]), seed: 2)
            }
        }
        #expect { try decode(Self.gzipDecoder(kind), [], seed: 1) } throws: {
            ($0 as? AutoupdateError)?.message == "the gzip stream is empty"
        }
    }

    @Test("not gzip: bad magic is named", arguments: gzipDecoders)
    func gzipBadMagic(kind: String) throws {
        #expect {
            try decode(Self.gzipDecoder(kind), Array("PK\u{3}\u{4}hello".utf8), seed: 1)
        } throws: { ($0 as? AutoupdateError)?.message.contains("not a gzip stream: bad magic bytes 50 4b 03") == true }
    }

    @Test("a pipelined decoder dropped mid-stream stops its thread (which waits for room for output)")
    func pipelinedAbandoned() async throws {
        // 50 MB of output from 50 kB: the decoding thread fills its output limit and waits.
        try await shell("head -c 50000000 /dev/zero | gzip -c > zeros.gz", in: folder.url)
        let gz = try file("zeros.gz")
        struct Enough: Error {}
        let stopped = try await onDedicatedThread {
            let done = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                for _ in 0..<10 {
                    let decoder = PipelinedDecoder { try GzipDecoder() }
                    _ = try? gz.withUnsafeBytes { try decoder.decode($0) { _ in throw Enough() } }
                    _ = try? decoder.finish { _ in throw Enough() }
                }
                done.signal()
            }
            let seconds = Int(TestTiming.bound(.seconds(30)).components.seconds)
            return done.wait(timeout: .now() + .seconds(seconds)) == .success
        }
        #expect(stopped, "dropping a pipelined decoder did not return: its thread never stopped")
    }

    /// The serial decoder and the parallel one, with 2 and 3 workers; the last also cut at false
    /// markers every 200 000 bits, so that every block is merged back from several pieces.
    static let bzip2Decoders: [String] = ["serial", "parallel-2", "parallel-3", "parallel-false-markers"]

    func bzip2Decoder(_ name: String) throws -> any StreamDecoder {
        switch name {
        case "serial": try Bzip2Decoder()
        case "parallel-2": try ParallelBzip2Decoder(workers: 2)
        case "parallel-3": try ParallelBzip2Decoder(workers: 3)
        default: try ParallelBzip2Decoder(workers: 2, falseMarkerStride: 200_000)
        }
    }

    @Test("bzip2 output of the bzip2 tool decodes identically at any chunking", arguments: bzip2Decoders, [0, 1, 2] as [UInt64])
    func bzip2ChunkInvariance(decoder: String, seed: UInt64) async throws {
        // -1: blocks of 100 kB, so the 300 kB sample has several.
        try await shell("bzip2 -9 -c plain > plain9.bz2 && bzip2 -1 -c plain > plain1.bz2", in: folder.url)
        for name in ["plain9.bz2", "plain1.bz2"] {
            let input = try file(name)
            let output = try await onDedicatedThread { try decode(bzip2Decoder(decoder), input, seed: seed) }
            #expect(output == plain, "\(name)")
        }
    }

    @Test("multi-stream bzip2 (as pbzip2 and lbzip2 write) decodes every stream", arguments: bzip2Decoders)
    func bzip2MultiStream(decoder: String) async throws {
        try await shell(
            "head -c 5000 plain | bzip2 -c > two.bz2 && tail -c +5001 plain | bzip2 -1 -c >> two.bz2 && : | bzip2 -c >> two.bz2",
            in: folder.url)
        #expect(try decode(bzip2Decoder(decoder), file("two.bz2"), seed: 3) == plain)
    }

    @Test("bzip2: zero padding after the last stream is accepted, other trailing data is not", arguments: bzip2Decoders)
    func bzip2Trailing(decoder: String) async throws {
        try await shell("bzip2 -1 -c plain > p.bz2", in: folder.url)
        let bz = try file("p.bz2")
        #expect(try decode(bzip2Decoder(decoder), bz + [UInt8](repeating: 0, count: 4096), seed: 4) == plain)
        #expect {
            try decode(bzip2Decoder(decoder), bz + Array("garbage".utf8), seed: 4)
        } throws: { ($0 as? AutoupdateError)?.message.contains("unexpected data after bzip2 stream 1") == true }
        #expect {
            try decode(bzip2Decoder(decoder), bz + [0, 0, 1], seed: 4)
        } throws: { ($0 as? AutoupdateError)?.message.contains("unexpected data after the bzip2 stream") == true }
    }

    @Test("a bzip2 block whose output is larger than a worker keeps decodes in order", arguments: ["parallel-2", "parallel-false-markers"])
    func bzip2LargeBlock(decoder: String) async throws {
        // 900 kB of runs expand to far more than 4 MiB per block (RLE before the BWT).
        try await shell("head -c 12000000 /dev/zero > zeros && cat zeros plain | bzip2 -9 -c > z.bz2", in: folder.url)
        let expected = [UInt8](repeating: 0, count: 12_000_000) + plain
        let input = try file("z.bz2")
        let output = try await onDedicatedThread { try decode(bzip2Decoder(decoder), input, seed: 5) }
        #expect(output == expected)
    }

    @Test("corrupt bzip2 data is refused", arguments: bzip2Decoders)
    func bzip2Corruption(decoder: String) async throws {
        try await shell("bzip2 -c plain > p.bz2 && bzip2 -1 -c plain > p1.bz2", in: folder.url)
        for name in ["p.bz2", "p1.bz2"] {
            for position in [0.3, 0.5, 0.9] {
                var bz = try file(name)
                bz[Int(Double(bz.count) * position)] ^= 0x10
                #expect {
                    try decode(bzip2Decoder(decoder), bz, seed: 1)
                } throws: { error in
                    guard let error = error as? AutoupdateError else { return false }
                    return [.checksumMismatch, .corruptArchive].contains(error.code) && error.message.contains("bzip2 stream 1 is corrupt")
                }
            }
        }
    }

    @Test("truncated bzip2 fails at every offset", arguments: bzip2Decoders)
    func bzip2Truncation(decoder: String) async throws {
        try await shell("bzip2 -1 -c plain > p.bz2", in: folder.url)
        let bz = try file("p.bz2")
        for cut in stride(from: 1, to: bz.count, by: max(1, bz.count / 30)) + [0, bz.count - 1] {
            #expect(throws: AutoupdateError.self, "cut at \(cut)") {
                try decode(bzip2Decoder(decoder), Array(bz[..<cut]), seed: 2)
            }
        }
        #expect {
            try decode(bzip2Decoder(decoder), Array("BZh0xxxx".utf8), seed: 1)
        } throws: { ($0 as? AutoupdateError)?.message.contains("not a bzip2 stream") == true }
    }
}

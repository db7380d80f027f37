#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The readers', decoders' and compressors' work alone, in memory, writing nothing: for fuzzing,
/// round-trip tests and benchmarks of decode and parse throughput.
@_spi(Internals)
public enum ArchiveScanner {
    /// What a scan saw.
    public struct Summary: Sendable, Equatable {
        public let entries: Int
        public let bytes: Int64
    }

    /// Decodes and parses a whole archive, fed `chunkSize` bytes at a time.
    ///
    /// - Parameters:
    ///   - spoolFolder: A folder for a zip's spool file, if one is needed; without it such zips
    ///     are refused.
    /// - Throws: ``AutoupdateError`` as an extraction would for a malformed archive.
    public static func scan(
        _ archive: UnsafeRawBufferPointer, format: ArchiveFormat, chunkSize: Int = 64 << 10, spoolFolder: String? = nil
    ) throws -> Summary {
        var entries = 0
        var bytes: Int64 = 0
        // A zip's small deflated entries are handed on whole, as an extraction has them, and
        // inflated here: the checks on that path are scanned (and fuzzed) too.
        let inflater = format == .zip ? try RawDeflateDecoder() : nil
        let handle: (ArchiveEvent) throws -> Void = { event in
            switch event {
            case .entry: entries += 1
            case .data(let data): bytes += Int64(data.count)
            case .hole(let count): bytes += count
            case .deflated(let data): try inflater.map { try data.inflate(with: $0) { bytes += Int64($0.count) } }
            case .entryEnd: break
            }
        }
        let decoder = try makeDecoder(for: format)
        var folder: Int32 = -1
        if let spoolFolder {
            folder = open(spoolFolder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        }
        defer { if folder >= 0 { close(folder) } }
        let zip = format == .zip ? ZipReader(makeSpool: folder >= 0 ? { [folder] in try SpoolFile(in: folder) } : nil, handsOnDeflatedUpTo: InflatePool.entryLimit) : nil
        var tar = TarReader()
        var offset = 0
        let step = max(1, chunkSize)
        while offset < archive.count {
            let chunk = UnsafeRawBufferPointer(rebasing: archive[offset..<min(offset + step, archive.count)])
            try decoder.decode(chunk) { decoded in
                if let zip { try zip.read(decoded, handle) } else { try tar.read(decoded, handle) }
            }
            offset += step
        }
        try decoder.finish { decoded in
            if let zip { try zip.read(decoded, handle) } else { try tar.read(decoded, handle) }
        }
        if let zip { try zip.finish(handle) } else { try tar.finish() }
        return Summary(entries: entries, bytes: bytes)
    }

    /// Decodes a compressed stream (gzip, bzip2) and returns its decoded length.
    public static func decode(_ input: UnsafeRawBufferPointer, format: ArchiveFormat, chunkSize: Int = 64 << 10) throws -> Int64 {
        let decoder = try makeDecoder(for: format)
        var total: Int64 = 0
        var offset = 0
        let step = max(1, chunkSize)
        while offset < input.count {
            try decoder.decode(UnsafeRawBufferPointer(rebasing: input[offset..<min(offset + step, input.count)])) {
                total += Int64($0.count)
            }
            offset += step
        }
        try decoder.finish { total += Int64($0.count) }
        return total
    }

    /// Decodes a compressed stream (gzip, bzip2) whole.
    public static func decoded(_ input: UnsafeRawBufferPointer, format: ArchiveFormat, chunkSize: Int = 64 << 10) throws -> [UInt8] {
        let decoder = try makeDecoder(for: format)
        var output: [UInt8] = []
        var offset = 0
        let step = max(1, chunkSize)
        while offset < input.count {
            try decoder.decode(UnsafeRawBufferPointer(rebasing: input[offset..<min(offset + step, input.count)])) { output += $0 }
            offset += step
        }
        try decoder.finish { output += $0 }
        return output
    }

    /// Compresses `input` as `publish` does (gzip level 6, bzip2 -9), handing it to the
    /// compressor in pieces whose sizes `pieceSizes` gives in turn, empty ones included.
    public static func compressed(_ input: UnsafeRawBufferPointer, format: ArchiveFormat, pieceSizes: [Int]) throws -> [UInt8] {
        let compressor: any StreamCompressor =
            switch format {
            case .tarGzip: try DeflateStream(gzip: true, level: 6)
            case .tarBzip2: try Bzip2CompressStream()
            case .tar, .zip: throw AutoupdateError(.invalidArgument, "\(format) has no compression layer of its own")
            }
        var output: [UInt8] = []
        var offset = 0
        var turn = 0
        while offset < input.count {
            let size = pieceSizes.isEmpty ? input.count : max(0, pieceSizes[turn % pieceSizes.count])
            turn += 1
            let end = min(offset + size, input.count)
            try compressor.compress(UnsafeRawBufferPointer(rebasing: input[offset..<end])) { output += $0 }
            offset = end
            // Only empty pieces, forever: hand the rest over at once.
            if turn >= pieceSizes.count, pieceSizes.allSatisfy({ $0 <= 0 }) {
                try compressor.compress(UnsafeRawBufferPointer(rebasing: input[offset...])) { output += $0 }
                offset = input.count
            }
        }
        try compressor.finish { output += $0 }
        return output
    }
}

import Foundation

/// A streaming decompressor: compressed chunks in, decompressed pieces out, memory bounded by
/// its buffers whatever the stream's size.
///
/// Sans-I/O: the caller feeds whatever chunks it has (any size, one byte included) and gets the
/// same output. Once a decoder has failed it keeps failing with the same error.
protocol StreamDecoder: AnyObject {
    /// Decodes `input`, handing each piece of output to `output`.
    ///
    /// - Important: The pieces are valid only during the call to `output`.
    func decode(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws

    /// The input has ended: hands on any output still held (a parallel decoder holds some),
    /// then throws if the stream is incomplete.
    func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws
}

/// Size of every decoder's output buffer.
let decoderBufferSize = 256 << 10

/// The decoder for a format's compression layer.
func makeDecoder(for format: ArchiveFormat) throws -> any StreamDecoder {
    switch format {
    case .tarGzip: ProcessInfo.processInfo.activeProcessorCount > 1
        ? PipelinedDecoder { try GzipDecoder() }
        : try GzipDecoder()
    case .tarBzip2: ProcessInfo.processInfo.activeProcessorCount > 1
        ? try ParallelBzip2Decoder(workers: min(ProcessInfo.processInfo.activeProcessorCount, 8))
        : try Bzip2Decoder()
    case .tar, .zip: IdentityDecoder()
    }
}

/// No compression: input passes through unchanged.
final class IdentityDecoder: StreamDecoder {
    func decode(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        if !input.isEmpty {
            try output(input)
        }
    }

    func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws {}
}

/// Entry points for the benchmark harness (`Benchmarks/`), not API.
@_spi(Internals) public enum DecodeProbe {
    /// Decodes a whole compressed file in memory, as the extractor would stream it, and returns
    /// the decoded length.
    public static func decodedLength(of bytes: [UInt8], format: ArchiveFormat, chunkSize: Int = 128 << 10) throws -> Int {
        let decoder = try makeDecoder(for: format)
        var length = 0
        try bytes.withUnsafeBytes { all in
            var offset = 0
            while offset < all.count {
                let end = min(offset + chunkSize, all.count)
                try decoder.decode(UnsafeRawBufferPointer(rebasing: all[offset..<end])) { length += $0.count }
                offset = end
            }
        }
        try decoder.finish { length += $0.count }
        return length
    }
}

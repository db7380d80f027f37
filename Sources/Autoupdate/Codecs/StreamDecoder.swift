#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

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
    let cores = ProcessInfo.processInfo.activeProcessorCount
    return switch format {
    case .tarGzip: cores > 1 ? PipelinedDecoder { try GzipDecoder() } : try GzipDecoder()
    case .tarBzip2: cores > 1 ? try ParallelBzip2Decoder(workers: min(cores, 8)) : try Bzip2Decoder()
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

/// Raw deflate (RFC 1951, no zlib or gzip framing), as zip entries hold it: the Codecs
/// component's decoder for readers that frame deflate data themselves.
///
/// Sans-I/O and reusable: one stream at a time, ``reset()`` between them. Unlike a
/// ``StreamDecoder`` it says where the deflate stream ended, because a zip entry with a data
/// descriptor has no other length: the bytes after the end belong to the descriptor.
final class RawDeflateDecoder {
    /// The deflate data is corrupt; `message` is zlib's words, `status` its code.
    struct Corrupt: Error {
        let message: String
        let status: ZlibStatus
    }

    private let stream: InflateStream
    private let buffer: UnsafeMutableRawBufferPointer

    init() throws {
        stream = try InflateStream(windowBits: -15)
        buffer = .allocate(byteCount: decoderBufferSize, alignment: 16)
    }

    deinit {
        buffer.deallocate()
    }

    /// Starts the next stream.
    func reset() {
        stream.reset()
    }

    /// Inflates `input`, handing the output on in pieces.
    ///
    /// - Returns: How many input bytes were used, and whether the deflate stream ended (the
    ///   bytes after its end are not used).
    /// - Throws: ``Corrupt``, or what `output` throws.
    func decode(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws -> (consumed: Int, ended: Bool) {
        do {
            return try stream.inflate(input, buffer: buffer, emit: output)
        } catch let failure as InflateFailure {
            throw Corrupt(message: failure.message, status: failure.status)
        }
    }
}

@available(*, unavailable)
extension RawDeflateDecoder: Sendable {}

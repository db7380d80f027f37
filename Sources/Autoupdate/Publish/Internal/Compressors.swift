import CAutoupdateBzip2
import CAutoupdateZlib

/// A streaming compressor: bytes in, compressed pieces out.
///
/// The output does not depend on how the input is cut into pieces; an empty piece is allowed
/// and changes nothing.
protocol StreamCompressor: AnyObject {
    func compress(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws
    /// Flushes the end of the stream (a gzip trailer, a bzip2 end-of-stream).
    func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws
}

/// zlib's deflate, as a gzip file (`windowBits` 31) or raw (zip, `windowBits` -15).
///
/// The corresponding C functions are `deflateInit2`, `deflate`, `deflateReset`, `deflateEnd`.
final class DeflateStream: StreamCompressor {
    private let stream: UnsafeMutablePointer<z_stream>
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)

    init(gzip: Bool, level: Int32 = 6) throws {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = autoupdate_deflateInit2(stream, level, gzip ? 15 + 16 : -15, 8)
        guard status == Z_OK else {
            stream.deallocate()
            buffer.deallocate()
            throw AutoupdateError(
                .fileSystem, "zlib could not start a compressor (\(ZlibStatus(rawValue: status)))", underlying: ZlibStatus(rawValue: status)
            )
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
        buffer.deallocate()
    }

    /// Starts a new raw stream (the next zip entry).
    func reset() {
        deflateReset(stream)
    }

    func compress(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard !input.isEmpty else { return }
        try run(input, flush: Z_NO_FLUSH, output: output)
    }

    func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws {
        try run(UnsafeRawBufferPointer(start: nil, count: 0), flush: Z_FINISH, output: output)
    }

    private func run(_ input: UnsafeRawBufferPointer, flush: Int32, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        stream.pointee.next_in = input.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self)) }
        stream.pointee.avail_in = UInt32(input.count)
        repeat {
            stream.pointee.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = UInt32(buffer.count)
            let status = deflate(stream, flush)
            guard status != Z_STREAM_ERROR else {
                throw AutoupdateError(
                    .fileSystem, "zlib failed while compressing (Z_STREAM_ERROR)", underlying: ZlibStatus(rawValue: status))
            }
            let produced = buffer.count - Int(stream.pointee.avail_out)
            if produced > 0 {
                try output(UnsafeRawBufferPointer(rebasing: buffer[..<produced]))
            }
            if flush == Z_FINISH, status == Z_STREAM_END { break }
        } while stream.pointee.avail_out == 0 || (flush == Z_FINISH)
        stream.pointee.next_in = nil
    }
}

@available(*, unavailable)
extension DeflateStream: Sendable {}

/// libbz2's compressor. The corresponding C functions are `BZ2_bzCompressInit`, `BZ2_bzCompress`,
/// `BZ2_bzCompressEnd`.
final class Bzip2CompressStream: StreamCompressor {
    private let stream: UnsafeMutablePointer<bz_stream>
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)

    init(blockSize: Int32 = 9) throws {
        stream = .allocate(capacity: 1)
        stream.initialize(to: bz_stream())
        let status = BZ2_bzCompressInit(stream, blockSize, 0, 0)
        guard status == BZ_OK else {
            stream.deallocate()
            buffer.deallocate()
            throw AutoupdateError(
                .fileSystem, "libbz2 could not start a compressor (\(Bzip2Status(rawValue: status)))",
                underlying: Bzip2Status(rawValue: status))
        }
    }

    deinit {
        BZ2_bzCompressEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
        buffer.deallocate()
    }

    func compress(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        // `BZ2_bzCompress(BZ_RUN)` answers BZ_PARAM_ERROR when it can make no progress: no input
        // and no output pending. A tar writer hands over an empty piece (the padding of a file
        // whose size is a multiple of 512), so an empty piece must never reach libbz2.
        guard !input.isEmpty else { return }
        try run(input, action: BZ_RUN, output: output)
    }

    func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws {
        try run(UnsafeRawBufferPointer(start: nil, count: 0), action: BZ_FINISH, output: output)
    }

    private func run(_ input: UnsafeRawBufferPointer, action: Int32, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        stream.pointee.next_in = input.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: CChar.self)) }
        stream.pointee.avail_in = UInt32(input.count)
        while true {
            stream.pointee.next_out = buffer.baseAddress!.assumingMemoryBound(to: CChar.self)
            stream.pointee.avail_out = UInt32(buffer.count)
            let status = BZ2_bzCompress(stream, action)
            guard status >= 0 else {
                throw AutoupdateError(
                    .fileSystem, "libbz2 failed while compressing (\(Bzip2Status(rawValue: status)))",
                    underlying: Bzip2Status(rawValue: status))
            }
            let produced = buffer.count - Int(stream.pointee.avail_out)
            if produced > 0 {
                try output(UnsafeRawBufferPointer(rebasing: buffer[..<produced]))
            }
            if action == BZ_FINISH ? status == BZ_STREAM_END : stream.pointee.avail_in == 0 {
                break
            }
        }
        stream.pointee.next_in = nil
    }
}

@available(*, unavailable)
extension Bzip2CompressStream: Sendable {}

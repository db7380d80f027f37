import CAutoupdateZlib

/// zlib's failure: the status and zlib's own message ("incorrect data check", …).
struct InflateFailure: Error {
    let status: ZlibStatus
    let message: String

    /// The gzip trailer's CRC-32 or length disagrees with the data.
    var isChecksumMismatch: Bool {
        message == "incorrect data check" || message == "incorrect length check"
    }
}

/// Owns one zlib inflate stream (`z_stream`).
///
/// The stream is heap-allocated and never moves: zlib keeps a pointer back to it.
/// The corresponding C functions are `inflateInit2`, `inflate`, `inflateReset`, `inflateEnd`.
final class InflateStream {
    private let stream: UnsafeMutablePointer<z_stream>

    /// - Parameter windowBits: `-15` for raw deflate (zip), `15 + 16` for gzip with its header
    ///   and trailer checks.
    init(windowBits: Int32) throws {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = autoupdate_inflateInit2(stream, windowBits)
        guard status == Z_OK else {
            stream.deinitialize(count: 1)
            stream.deallocate()
            throw AutoupdateError(.corruptArchive, "zlib could not start a decoder (\(ZlibStatus(rawValue: status)))")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Starts a new stream (the next gzip member, the next zip entry).
    func reset() {
        inflateReset(stream)
    }

    /// Decompressed bytes produced since the last reset.
    var totalOut: Int64 { Int64(stream.pointee.total_out) }

    /// Inflates `input`, handing output to `emit` a `buffer` at a time.
    ///
    /// - Returns: How many input bytes were consumed, and whether the stream ended (bytes after
    ///   the end are not consumed).
    func inflate(
        _ input: UnsafeRawBufferPointer, buffer: UnsafeMutableRawBufferPointer,
        emit: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> (consumed: Int, ended: Bool) {
        guard let outputBase = buffer.baseAddress?.assumingMemoryBound(to: Bytef.self) else {
            return (0, false)
        }
        stream.pointee.next_in = input.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self)) }
        stream.pointee.avail_in = UInt32(input.count)
        defer {
            stream.pointee.next_in = nil
            stream.pointee.avail_in = 0
        }
        while true {
            stream.pointee.next_out = outputBase
            stream.pointee.avail_out = UInt32(buffer.count)
            let status = CAutoupdateZlib.inflate(stream, Z_NO_FLUSH)
            let produced = buffer.count - Int(stream.pointee.avail_out)
            if produced > 0 {
                try emit(UnsafeRawBufferPointer(rebasing: buffer[..<produced]))
            }
            switch status {
            case Z_STREAM_END:
                return (input.count - Int(stream.pointee.avail_in), true)
            case Z_OK, Z_BUF_ERROR:
                // Go on while input remains or the output buffer filled up (more may be pending);
                // Z_BUF_ERROR only means no progress was possible without more input.
                if stream.pointee.avail_in == 0 && stream.pointee.avail_out != 0 {
                    return (input.count, false)
                }
                if status == Z_BUF_ERROR && produced == 0 {
                    return (input.count - Int(stream.pointee.avail_in), false)
                }
            default:
                let message = stream.pointee.msg.map { String(cString: $0) } ?? ZlibStatus(rawValue: status).description
                throw InflateFailure(status: ZlibStatus(rawValue: status), message: message)
            }
        }
    }
}

@available(*, unavailable)
extension InflateStream: Sendable {}

/// CRC-32 (the zip and gzip checksum). The corresponding C function is `crc32`.
struct CRC32 {
    private(set) var value: UInt32 = 0

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        var crc = UInt(value)
        var offset = 0
        // zlib's length is a 32-bit uInt: feed large buffers in pieces.
        while offset < bytes.count {
            let length = min(bytes.count - offset, Int(UInt32.max))
            crc = CAutoupdateZlib.crc32(crc, base.advanced(by: offset).assumingMemoryBound(to: Bytef.self), uInt(length))
            offset += length
        }
        value = UInt32(truncatingIfNeeded: crc)
    }
}

import CAutoupdateBzip2

/// A libbz2 status code, carried as the `underlying` cause of an ``AutoupdateError``.
///
/// The corresponding C values are `BZ_OK`, `BZ_DATA_ERROR`, ….
struct Bzip2Status: RawRepresentable, Hashable, Error, CustomStringConvertible {
    let rawValue: Int32

    var description: String {
        switch rawValue {
        case BZ_DATA_ERROR: "BZ_DATA_ERROR"
        case BZ_DATA_ERROR_MAGIC: "BZ_DATA_ERROR_MAGIC"
        case BZ_MEM_ERROR: "BZ_MEM_ERROR"
        case BZ_PARAM_ERROR: "BZ_PARAM_ERROR"
        case BZ_SEQUENCE_ERROR: "BZ_SEQUENCE_ERROR"
        default: "libbz2 status \(rawValue)"
        }
    }
}

/// Owns one libbz2 decompression stream (`bz_stream`).
///
/// The stream is heap-allocated and never moves: libbz2 keeps a pointer back to it.
/// The corresponding C functions are `BZ2_bzDecompressInit`, `BZ2_bzDecompress`,
/// `BZ2_bzDecompressEnd`.
final class Bzip2Stream {
    private let stream: UnsafeMutablePointer<bz_stream>
    private var isOpen = false

    init() throws {
        stream = .allocate(capacity: 1)
        stream.initialize(to: bz_stream())
        try open()
    }

    deinit {
        if isOpen {
            BZ2_bzDecompressEnd(stream)
        }
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    private func open() throws {
        let status = BZ2_bzDecompressInit(stream, 0, 0)
        guard status == BZ_OK else {
            throw AutoupdateError(.corruptArchive, "libbz2 could not start a decoder (\(Bzip2Status(rawValue: status)))")
        }
        isOpen = true
    }

    /// Starts the next stream of a multi-stream file (pbzip2, lbzip2 output).
    func restart() throws {
        if isOpen {
            BZ2_bzDecompressEnd(stream)
            isOpen = false
        }
        stream.pointee = bz_stream()
        try open()
    }

    /// Decompresses `input`, handing output to `emit` a `buffer` at a time.
    ///
    /// - Returns: How many input bytes were consumed, and whether the stream ended.
    func decompress(
        _ input: UnsafeRawBufferPointer, buffer: UnsafeMutableRawBufferPointer,
        emit: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> (consumed: Int, ended: Bool) {
        guard let outputBase = buffer.baseAddress?.assumingMemoryBound(to: CChar.self) else {
            return (0, false)
        }
        stream.pointee.next_in = input.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: CChar.self)) }
        stream.pointee.avail_in = UInt32(input.count)
        defer {
            stream.pointee.next_in = nil
            stream.pointee.avail_in = 0
        }
        while true {
            stream.pointee.next_out = outputBase
            stream.pointee.avail_out = UInt32(buffer.count)
            let status = BZ2_bzDecompress(stream)
            let produced = buffer.count - Int(stream.pointee.avail_out)
            if produced > 0 {
                try emit(UnsafeRawBufferPointer(rebasing: buffer[..<produced]))
            }
            switch status {
            case BZ_STREAM_END:
                return (input.count - Int(stream.pointee.avail_in), true)
            case BZ_OK:
                if stream.pointee.avail_in == 0 && stream.pointee.avail_out != 0 {
                    return (input.count, false)
                }
                if produced == 0 && stream.pointee.avail_in == 0 {
                    return (input.count, false)
                }
            default:
                throw Bzip2Status(rawValue: status)
            }
        }
    }
}

@available(*, unavailable)
extension Bzip2Stream: Sendable {}

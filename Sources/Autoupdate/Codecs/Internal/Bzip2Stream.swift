import CAutoupdateBzip2
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Owns one libbz2 decompression stream (`bz_stream`).
///
/// The stream is heap-allocated and never moves: libbz2 keeps a pointer back to it.
/// The corresponding C functions are `BZ2_bzDecompressInit`, `BZ2_bzDecompress`,
/// `BZ2_bzDecompressEnd`.
final class Bzip2Stream {
    private let stream: UnsafeMutablePointer<bz_stream>
    private var isOpen = false
    /// libbz2's allocations go through this: what one stream frees the next reuses.
    private let allocations = Bzip2Allocations()

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
        stream.pointee.opaque = Unmanaged.passUnretained(allocations).toOpaque()
        stream.pointee.bzalloc = { opaque, items, size in
            guard let opaque, items > 0, size > 0 else { return nil }
            return Unmanaged<Bzip2Allocations>.fromOpaque(opaque).takeUnretainedValue().allocate(Int(items) * Int(size))
        }
        stream.pointee.bzfree = { opaque, pointer in
            guard let opaque, let pointer else { return }
            Unmanaged<Bzip2Allocations>.fromOpaque(opaque).takeUnretainedValue().release(pointer)
        }
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

/// Keeps the blocks a libbz2 decoder frees for its next stream.
///
/// The parallel decoder starts a stream per block; each start allocates a 3.6 MB table (level
/// 9) and each end frees it, which through malloc cost fresh pages per block (about 4 % of a
/// decode's CPU time). Reused here, a decoder holds one set for its life.
final class Bzip2Allocations {
    /// Room before each block for its size (and the alignment malloc gives).
    private static let header = 16
    private static let kept = 4
    private var free: [(block: UnsafeMutableRawPointer, size: Int)] = []

    deinit {
        for (block, _) in free {
            Glibc.free(block)
        }
    }

    func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        if let index = free.firstIndex(where: { $0.size == size }) {
            return free.remove(at: index).block + Self.header
        }
        guard let block = malloc(size + Self.header) else { return nil }
        block.storeBytes(of: size, as: Int.self)
        return block + Self.header
    }

    func release(_ pointer: UnsafeMutableRawPointer) {
        let block = pointer - Self.header
        if free.count < Self.kept {
            free.append((block, block.load(as: Int.self)))
        } else {
            Glibc.free(block)
        }
    }
}

@available(*, unavailable)
extension Bzip2Allocations: Sendable {}

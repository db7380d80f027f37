#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

/// An unnamed temporary file (`O_TMPFILE`) in a given folder: it has no name, so nothing is left
/// behind whatever happens, and it lives on the destination's file system, not in memory.
///
/// The corresponding C calls are `openat(…, O_TMPFILE)`, `pwrite`, `pread`.
final class SpoolFile {
    private let descriptor: Int32
    private(set) var size: Int64 = 0

    /// Linux's `O_TMPFILE` (`__O_TMPFILE | O_DIRECTORY`), which Swift cannot import as a macro.
    private static let temporaryFileFlag: Int32 = 0o20_000_000 | O_DIRECTORY

    /// - Parameter directory: An open descriptor of the folder to spool in.
    init(in directory: Int32) throws {
        let descriptor = openat(directory, ".", Self.temporaryFileFlag | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw AutoupdateError(
                .fileSystem, "cannot create a spool file for the zip archive (\(Errno.current))", underlying: Errno.current)
        }
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws {
        var written = 0
        while written < bytes.count {
            let result = pwrite(descriptor, bytes.baseAddress! + written, bytes.count - written, off_t(size) + off_t(written))
            if result < 0 {
                if errno == EINTR { continue }
                throw AutoupdateError(.fileSystem, "cannot spool the zip archive (\(Errno.current))", underlying: Errno.current)
            }
            written += result
        }
        size += Int64(bytes.count)
    }

    /// Reads exactly `count` bytes at `offset`.
    func read(at offset: Int64, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset + Int64(count) <= size else {
            throw AutoupdateError(.corruptArchive, "the zip archive refers to bytes past its end (offset \(offset))")
        }
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        try bytes.withUnsafeMutableBytes { buffer in
            while done < count {
                let result = pread(descriptor, buffer.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if result < 0 {
                    if errno == EINTR { continue }
                    throw AutoupdateError(.fileSystem, "cannot read the zip spool (\(Errno.current))", underlying: Errno.current)
                }
                guard result > 0 else {
                    throw AutoupdateError(.fileSystem, "the zip spool ended early")
                }
                done += result
            }
        }
        return bytes
    }
}

@available(*, unavailable)
extension SpoolFile: Sendable {}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

/// Replacing a small file so that a crash leaves either the old content or the new, never a mix:
/// a temporary file in the same folder, `fsync`, `rename` over the old one, `fsync` of the folder.
enum AtomicFile {
    static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        let name = url.lastPathComponent
        let folderDescriptor = try open(folder: folder)
        let directory = folderDescriptor.raw
        let temporary = ".\(name).tmp-\(UInt32.random(in: 0...UInt32.max))"
        let file: OpenDescriptor
        switch Syscall.openAt(directory, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode) {
        case .success(let opened): file = OpenDescriptor(taking: opened)
        case .failure(let errno): throw failure("cannot create a temporary file for", path, errno)
        }
        do {
            if case .failure(let errno) = bytes.withUnsafeBytes({ Syscall.writeAll(file.raw, $0) }) {
                throw failure("cannot write", path, errno)
            }
            if case .failure(let errno) = Syscall.sync(file.raw) {
                throw failure("cannot flush", path, errno)
            }
        } catch {
            _ = Syscall.unlinkAt(directory, temporary)
            throw error
        }
        try withExtendedLifetime(folderDescriptor) {
            if case .failure(let errno) = Syscall.renameAt(directory, temporary, directory, name) {
                _ = Syscall.unlinkAt(directory, temporary)
                throw failure("cannot replace", path, errno)
            }
            if case .failure(let errno) = Syscall.sync(directory) {
                throw failure("cannot flush the folder of", path, errno)
            }
        }
    }

    /// Opens a folder by path; the descriptor closes when the result goes.
    static func open(folder: String) throws -> OpenDescriptor {
        switch Syscall.openAt(AT_FDCWD, folder, O_RDONLY | O_DIRECTORY) {
        case .success(let descriptor): return OpenDescriptor(taking: descriptor)
        case .failure(let errno): throw failure("cannot open the folder", folder, errno)
        }
    }

    private static func failure(_ what: String, _ path: String, _ errno: Errno) -> AutoupdateError {
        AutoupdateError(.fileSystem, "\(what) \(quoted(path)) (\(errno))", underlying: errno)
    }
}

/// An advisory lock (`flock`) held for as long as the value lives; the kernel releases it when the
/// process dies, so a crash never leaves a stale lock.
///
/// The corresponding C function is `flock`.
final class FileLock: Sendable {
    private let descriptor: Int32

    /// Takes the lock without waiting.
    ///
    /// - Returns: `nil` when someone else holds a conflicting lock.
    /// - Parameter readOnly: Opens an existing file for reading only (a shared lock needs no more).
    static func acquire(_ path: String, exclusive: Bool, directory: Bool = false, readOnly: Bool = false) throws -> FileLock? {
        let flags = directory ? O_RDONLY | O_DIRECTORY : readOnly ? O_RDONLY : O_RDWR | O_CREAT
        let descriptor: Int32
        switch Syscall.openAt(AT_FDCWD, path, flags, 0o644) {
        case .success(let opened): descriptor = opened
        case .failure(let errno):
            throw AutoupdateError(.fileSystem, "cannot open the lock \(quoted(path)) (\(errno))", underlying: errno)
        }
        while flock(descriptor, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0 {
            if errno == EINTR { continue }
            let error = Errno.current
            close(descriptor)
            if error == .wouldBlock {
                return nil
            }
            throw AutoupdateError(.fileSystem, "cannot lock \(quoted(path)) (\(error))", underlying: error)
        }
        return FileLock(descriptor: descriptor)
    }

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    /// Replaces the locked file's content (a lock holder's note, such as its pid); best effort.
    func replaceContent(with text: String) {
        guard ftruncate(descriptor, 0) == 0 else { return }
        _ = Array(text.utf8).withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
    }

    /// A second descriptor of the same open file description, close-on-exec, numbered at least
    /// `minimum` (-1 on failure): whoever holds it holds the lock too, until every copy is closed.
    func duplicateDescriptor(minimum: Int32) -> Int32 {
        fcntl(descriptor, F_DUPFD_CLOEXEC, minimum)
    }

    deinit {
        close(descriptor)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

/// Thin wrappers over the `*at` system calls the extractor and installer use: they return the
/// result or a typed `Errno`, and retry on `EINTR`.
enum Syscall {
    private static func valueOrErrno<T>(_ call: () -> T, failed: (T) -> Bool) -> Result<T, Errno> {
        while true {
            let value = call()
            if !failed(value) {
                return .success(value)
            }
            if errno != EINTR {
                return .failure(.current)
            }
        }
    }

    /// The corresponding C function is `openat`.
    static func openAt(_ directory: Int32, _ name: String, _ flags: Int32, _ mode: mode_t = 0) -> Result<Int32, Errno> {
        valueOrErrno({ openat(directory, name, flags | O_CLOEXEC, mode) }, failed: { $0 < 0 })
    }

    /// The corresponding C function is `mkdirat`.
    static func makeDirectoryAt(_ directory: Int32, _ name: String, _ mode: mode_t) -> Result<Void, Errno> {
        valueOrErrno({ mkdirat(directory, name, mode) }, failed: { $0 < 0 }).map { _ in }
    }

    /// The corresponding C function is `unlinkat`.
    static func unlinkAt(_ directory: Int32, _ name: String, directory isDirectory: Bool = false) -> Result<Void, Errno> {
        valueOrErrno({ unlinkat(directory, name, isDirectory ? AT_REMOVEDIR : 0) }, failed: { $0 < 0 }).map { _ in }
    }

    /// A hard link, never following symlinks. The corresponding C function is `linkat`.
    static func linkAt(_ fromDirectory: Int32, _ from: String, _ toDirectory: Int32, _ to: String) -> Result<Void, Errno> {
        valueOrErrno({ linkat(fromDirectory, from, toDirectory, to, 0) }, failed: { $0 < 0 }).map { _ in }
    }

    /// The corresponding C function is `symlinkat`.
    static func symlinkAt(_ target: String, _ directory: Int32, _ name: String) -> Result<Void, Errno> {
        valueOrErrno({ symlinkat(target, directory, name) }, failed: { $0 < 0 }).map { _ in }
    }

    /// The corresponding C function is `renameat`.
    static func renameAt(_ fromDirectory: Int32, _ from: String, _ toDirectory: Int32, _ to: String) -> Result<Void, Errno> {
        valueOrErrno({ renameat(fromDirectory, from, toDirectory, to) }, failed: { $0 < 0 }).map { _ in }
    }

    /// `lstat` relative to a folder. The corresponding C function is `fstatat`.
    static func statAt(_ directory: Int32, _ name: String, followSymlinks: Bool = false) -> Result<stat, Errno> {
        var info = stat()
        return valueOrErrno({ fstatat(directory, name, &info, followSymlinks ? 0 : AT_SYMLINK_NOFOLLOW) }, failed: { $0 < 0 })
            .map { _ in info }
    }

    /// Writes all of `bytes`. The corresponding C function is `write`.
    static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) -> Result<Void, Errno> {
        var offset = 0
        while offset < bytes.count {
            switch valueOrErrno({ write(descriptor, bytes.baseAddress! + offset, bytes.count - offset) }, failed: { $0 < 0 }) {
            case .success(let written): offset += written
            case .failure(let error): return .failure(error)
            }
        }
        return .success(())
    }

    /// Reads up to `limit` bytes. The corresponding C function is `read`.
    static func readUpTo(_ descriptor: Int32, _ limit: Int) -> Result<[UInt8], Errno> {
        var bytes = [UInt8](repeating: 0, count: limit)
        var count = 0
        while count < limit {
            let result = bytes.withUnsafeMutableBytes { buffer in
                valueOrErrno({ read(descriptor, buffer.baseAddress! + count, limit - count) }, failed: { $0 < 0 })
            }
            switch result {
            case .success(0): return .success(Array(bytes[..<count]))
            case .success(let read): count += read
            case .failure(let error): return .failure(error)
            }
        }
        return .success(bytes)
    }

    /// Sets the permission bits exactly (no umask). The corresponding C function is `fchmod`.
    static func changeMode(_ descriptor: Int32, _ mode: mode_t) -> Result<Void, Errno> {
        valueOrErrno({ fchmod(descriptor, mode) }, failed: { $0 < 0 }).map { _ in }
    }

    /// Sets the modification time, leaving the access time. The corresponding C function is `futimens`.
    static func setModificationTime(_ descriptor: Int32, _ seconds: Int64) -> Result<Void, Errno> {
        // UTIME_OMIT is ((1 << 30) - 2), a macro Swift cannot import.
        var times = [timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2), timespec(tv_sec: Int(seconds), tv_nsec: 0)]
        return valueOrErrno({ futimens(descriptor, &times) }, failed: { $0 < 0 }).map { _ in }
    }

    /// Flushes a file or folder to disk. The corresponding C function is `fsync`.
    static func sync(_ descriptor: Int32) -> Result<Void, Errno> {
        valueOrErrno({ fsync(descriptor) }, failed: { $0 < 0 }).map { _ in }
    }
}

#if canImport(FoundationEssentials)
package import FoundationEssentials
#else
package import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
package import SystemPackage

/// An open file, closed when the value goes: what the library needs of Foundation's
/// `FileHandle`, on swift-system's `FileDescriptor`, so that it builds on FoundationEssentials
/// alone (no ICU in a static binary).
package final class OpenFile {
    package let descriptor: FileDescriptor
    private var isOpen = true

    package init(taking descriptor: FileDescriptor) {
        self.descriptor = descriptor
    }

    /// Opens an existing file for reading; `nil` when it cannot be opened.
    package convenience init?(forReadingAtPath path: String) {
        guard let descriptor = try? FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec]) else { return nil }
        self.init(taking: descriptor)
    }

    /// Opens an existing file for writing (at its start; nothing is truncated); `nil` when it
    /// cannot be opened.
    package convenience init?(forWritingAtPath path: String) {
        guard let descriptor = try? FileDescriptor.open(FilePath(path), .writeOnly, options: [.closeOnExec]) else { return nil }
        self.init(taking: descriptor)
    }

    deinit {
        if isOpen { try? descriptor.close() }
    }

    package func close() throws {
        guard isOpen else { return }
        isOpen = false
        try descriptor.close()
    }

    /// Up to `count` bytes from the current offset; `nil` at the end of the file.
    package func read(upToCount count: Int) throws -> Data? {
        // Read straight into the result: no second copy.
        var data = Data(count: count)
        let filled = try data.withUnsafeMutableBytes { raw -> Int in
            var filled = 0
            while filled < count {
                let read = try descriptor.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[filled...]), retryOnInterrupt: true)
                if read == 0 { break }
                filled += read
            }
            return filled
        }
        guard filled > 0 else { return nil }
        data.count = filled
        return data
    }

    /// Everything from the current offset to the end.
    package func readToEnd() throws -> Data {
        var data = Data()
        while true {
            guard let chunk = try read(upToCount: 1 << 20) else { return data }
            data.append(chunk)
        }
    }

    /// Moves to the end; returns the offset there (the file's size).
    @discardableResult
    package func seekToEnd() throws -> UInt64 {
        UInt64(try descriptor.seek(offset: 0, from: .end))
    }

    package func seek(toOffset offset: UInt64) throws {
        _ = try descriptor.seek(offset: Int64(offset), from: .start)
    }

    package func write(contentsOf bytes: some DataProtocol) throws {
        for region in bytes.regions {
            _ = try region.withUnsafeBytes { try descriptor.writeAll($0) }
        }
    }

    /// Flushes the file's data and metadata to the disk (`fsync`).
    package func synchronize() throws {
        guard fsync(descriptor.rawValue) == 0 else { throw Errno(rawValue: errno) }
    }
}

extension FileManager {
    /// Whether `path` (symlinks followed, as `fileExists(atPath:isDirectory:)` does) is a
    /// folder; `nil` when nothing is there.
    func isFolder(atPath path: String) -> Bool? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mode & S_IFMT == S_IFDIR
    }

    /// The size of the file at `path` (symlinks followed); `nil` when it cannot be read.
    func size(ofItemAtPath path: String) -> Int64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int64(info.st_size)
    }
}

/// A file operation's failure as a short reason: the system's words for the POSIX error it
/// carries ("No space left on device"), else its description.
package func describeFileError(_ error: any Error) -> String {
    if let errno = error as? Errno {
        return String(cString: strerror(errno.rawValue))
    }
    if let posix = error as? POSIXError {
        return String(cString: strerror(posix.code.rawValue))
    }
    if let cocoa = error as? CocoaError {
        for case let underlying as any Error in cocoa.userInfo.values {
            if let posix = underlying as? POSIXError {
                return String(cString: strerror(posix.code.rawValue))
            }
        }
        return cocoa.localizedReason
    }
    return "\(error)"
}

extension CocoaError {
    /// What the error's code says, in words.
    var localizedReason: String {
        switch code {
        case .fileNoSuchFile, .fileReadNoSuchFile: "no such file or folder"
        case .fileReadNoPermission, .fileWriteNoPermission: "permission denied"
        case .fileWriteOutOfSpace: "no space left on device"
        case .fileWriteVolumeReadOnly: "read-only file system"
        case .fileWriteFileExists: "it exists already"
        default: "file error \(code.rawValue)"
        }
    }
}

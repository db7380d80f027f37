internal import CAutoupdateSystem
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The receiving end of systemd's notification protocol (`sd_notify(3)`), which `watch --ready
/// notify` gives the app as `NOTIFY_SOCKET`: a datagram socket whose messages are lines of
/// `KEY=VALUE` (`READY=1`, `STATUS=…`). An app that already calls `sd_notify` works unchanged.
///
/// A path in the update folder when it fits a socket address, else an abstract address (`@…`,
/// as systemd also hands out). Receiving is done by one thread of the watch's, in short waits.
final class NotifySocket: Sendable {
    /// As the app gets it in `NOTIFY_SOCKET`.
    let address: String
    private let descriptor: Int32
    private let path: String?

    init(in folder: AppFolder) throws {
        let file = folder.updateDirectory + "/notify-\(getpid()).sock"
        let abstract = file.utf8.count >= 100
        address = abstract ? "@autoupdate-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" : file
        path = abstract ? nil : file
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw AutoupdateError(.fileSystem, "cannot make a notification socket (\(Errno.current))") }
        if let path {
            try FileManager.default.createDirectory(atPath: folder.updateDirectory, withIntermediateDirectories: true)
            unlink(path)
        }
        var wait = timeval(tv_sec: 0, tv_usec: 200_000)
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        // Each message comes with its sender's pid: only the app's own count.
        var on: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, 16 /* SO_PASSCRED */, &on, socklen_t(MemoryLayout<Int32>.size))
        let bound = Self.withAddress(address) { bind(descriptor, $0, $1) }
        guard bound == 0 else {
            let error = Errno.current
            close(descriptor)
            throw AutoupdateError(.fileSystem, "cannot bind the notification socket \(quoted(address)) (\(error))", underlying: error)
        }
    }

    deinit {
        close(descriptor)
        if let path { unlink(path) }
    }

    /// The next message's fields and its sender's pid (0 when unknown), waiting at most 200 ms;
    /// `nil` when none came.
    func receive() -> (sender: Int32, fields: [String: String])? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var sender: Int32 = 0
        let count = buffer.withUnsafeMutableBytes { autoupdate_recv_with_pid(descriptor, $0.baseAddress, UInt($0.count), &sender) }
        guard count > 0 else { return nil }
        var fields: [String: String] = [:]
        for line in buffer[..<count].split(separator: UInt8(ascii: "\n")) {
            let text = String(decoding: line, as: UTF8.self)
            guard let equals = text.firstIndex(of: "=") else { continue }
            fields[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        return (sender, fields)
    }

    /// Sends `message` to a notification socket (autoupdate's own, under systemd); best effort.
    static func send(_ message: String, to address: String) {
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        let bytes = Array(message.utf8)
        _ = withAddress(address) { address, length in
            bytes.withUnsafeBytes { sendto(descriptor, $0.baseAddress, $0.count, 0, address, length) }
        }
    }

    /// `address` as a `sockaddr_un` (`@` at the start: the abstract namespace).
    private static func withAddress<Result>(_ address: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        var storage = sockaddr_un()
        storage.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(address.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: storage.sun_path)
        let count = min(bytes.count, capacity - 1)
        withUnsafeMutableBytes(of: &storage.sun_path) { raw in
            raw.copyBytes(from: bytes[..<count])
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + count + (bytes.first == 0 ? 0 : 1))
        return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) } }
    }
}

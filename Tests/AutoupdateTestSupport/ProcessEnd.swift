import CAutoupdateSystem
import Foundation

extension ProcessTable {
    /// Waits until `pid` has ended (exited; reaped or not), through a pidfd, at most `timeout`.
    ///
    /// - Returns: Whether it ended in time (`true` at once when there is no such process).
    public static func waitUntilEnded(_ pid: Int32, timeout: Duration = .seconds(10)) async throws -> Bool {
        let descriptor = autoupdate_pidfd_open(pid)
        guard descriptor >= 0 else { return true }  // ESRCH: gone already
        defer { close(descriptor) }
        let limit = TestTiming.bound(timeout)
        let milliseconds = Int32(limit.components.seconds * 1000 + limit.components.attoseconds / 1_000_000_000_000_000)
        return try await onDedicatedThread {
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            while true {
                let ready = poll(&entry, 1, milliseconds)
                if ready < 0, errno == EINTR { continue }
                return ready > 0
            }
        }
    }
}

/// A TCP listener on 127.0.0.1 that accepts connections (the kernel does, into its backlog) and
/// never says a word: a server that hangs a TLS handshake.
public final class SilentListener: Sendable {
    private let descriptor: Int32
    public let port: Int

    public init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(descriptor, 64) == 0 else {
            close(descriptor)
            throw TestFailure("bind/listen: \(String(cString: strerror(errno)))")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        close(descriptor)
    }

    /// `https://127.0.0.1:PORT/`.
    public var url: String { "https://127.0.0.1:\(port)/" }
}

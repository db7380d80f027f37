#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How a new version proves it is ready during its health window: a command (`--health-cmd`)
/// or a GET on a loopback URL (`--health-url`), every ``interval`` until it passes ``passes``
/// times in a row. Not ready by the window's end means a rollback, as a crash does.
public struct HealthCheck: Sendable, Equatable {
    /// What is asked.
    public enum Probe: Sendable, Equatable {
        /// Run with `/bin/sh -c` in the app folder, with the app's environment (`AUTOUPDATE_DIR`
        /// among it); exit 0 passes.
        case command(String)
        /// A GET on `http` or `https` at 127.0.0.1, ::1 or localhost; a 2xx answer passes
        /// (https is verified as updates are, `--ca-file` included).
        case url(URL)
        /// The app says so itself, as under systemd: it gets `NOTIFY_SOCKET` and sends
        /// `READY=1` (`sd_notify`).
        case notify
    }

    public var probe: Probe
    /// Between two runs. Default 2 s.
    public var interval: Duration
    /// Passes in a row needed. Default 1.
    public var passes: Int
    /// A run that takes longer fails (its process group is killed). Default 5 s.
    public var timeout: Duration

    public init(_ probe: Probe, interval: Duration = .seconds(2), passes: Int = 1, timeout: Duration = .seconds(5)) {
        self.probe = probe
        self.interval = interval
        self.passes = max(1, passes)
        self.timeout = timeout
    }

    /// A command check.
    public init(command: String, interval: Duration = .seconds(2), passes: Int = 1, timeout: Duration = .seconds(5)) {
        self.init(.command(command), interval: interval, passes: passes, timeout: timeout)
    }

    /// Checks that a URL may be probed: http or https on the loopback interface only.
    ///
    /// - Throws: ``AutoupdateError`` `.invalidArgument` naming what is wrong.
    public static func validate(url: URL) throws {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw AutoupdateError(.invalidArgument, "the health URL \(url.displayString) must be http or https")
        }
        guard let host = url.host?.lowercased(), ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host) else {
            throw AutoupdateError(
                .invalidArgument,
                "the health URL \(url.displayString) must be on 127.0.0.1, ::1 or localhost: a readiness check asks this machine")
        }
    }

    /// Asks once: whether the check passed within the timeout.
    func check(in folder: AppFolder, environment: [String: String], download: DownloadConfiguration) async -> Bool {
        switch probe {
        case .notify:
            return false  // the app's own message says it (see `Watcher`)
        case .command(let command):
            return await run(command, in: folder, environment: environment)
        case .url(let url) where url.scheme?.lowercased() == "https":
            var once = download
            once.maxRetries = 0
            once.deadline = timeout
            once.connectTimeout = min(once.connectTimeout, timeout)
            return (try? await Downloader(configuration: once).fetch(url, maxBytes: 1 << 20)) != nil
        case .url(let url):
            let timeout = timeout
            return (try? await runOnBackgroundThread(name: "autoupdate.health") { LoopbackHTTP.isHealthy(url, timeout: timeout) }) ?? false
        }
    }

    /// Runs the command once: whether it exited 0 within the timeout.
    private func run(_ command: String, in folder: AppFolder, environment: [String: String]) async -> Bool {
        guard
            let child = try? await SpawnedChild.spawn(
                executable: "/bin/sh", arguments: ["-c", command], environment: environment, workingDirectory: folder.path,
                terminal: nil, grace: .seconds(1), holding: nil, onExit: { _, _ in })
        else { return false }
        guard let status = await child.exitStatus(within: timeout) else {
            child.signal(SIGKILL)
            _ = await child.waitForExit()
            return false
        }
        return status.isSuccess
    }
}

/// A plain-HTTP GET on the loopback interface, for readiness checks only: one request, the
/// status line read, the connection closed. (Updates never use http: they are upgraded to https.)
enum LoopbackHTTP {
    /// Whether `url` answers 2xx within `timeout`; any failure is "not healthy".
    static func isHealthy(_ url: URL, timeout: Duration) -> Bool {
        guard let host = url.host?.lowercased() else { return false }
        let ipv6 = host == "::1" || host == "[::1]"
        let port = UInt16(url.port ?? 80)
        let descriptor = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var wait = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        let connected: Int32
        if ipv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            address.sin6_addr = in6addr_loopback
            connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        guard connected == 0 else { return false }
        var path = url.path.isEmpty ? "/" : url.path
        if let query = url.query { path += "?" + query }
        let request = Array(
            "GET \(path) HTTP/1.1\r\nHost: \(url.host ?? "localhost"):\(port)\r\nConnection: close\r\nUser-Agent: autoupdate-health\r\n\r\n"
                .utf8)
        guard case .success = request.withUnsafeBytes({ Syscall.writeAll(descriptor, $0) }) else { return false }
        var head: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        while !head.contains(UInt8(ascii: "\n")), head.count < 1024 {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            head += buffer[..<count]
        }
        // "HTTP/1.1 204 No Content"
        let line = String(decoding: head.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let fields = line.split(separator: " ")
        guard fields.count >= 2, fields[0].hasPrefix("HTTP/1."), let status = Int(fields[1]) else { return false }
        return (200..<300).contains(status)
    }
}

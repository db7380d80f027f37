public import Foundation
import NIOConcurrencyHelpers

/// A named pipe through which a child process tells a test what it is doing ("ready",
/// "grandchild 1234"), so that the test awaits an event instead of sleeping.
public final class Fifo: Sendable {
    /// Its path, for the child to write to (`echo ready > "$FIFO"`).
    public let path: String
    private let reader: Int32
    private let keepOpen: Int32
    private let pending = LockedBuffer()

    /// Creates the pipe in `folder` and opens it for reading.
    public init(in folder: URL, name: String = "events.fifo") throws {
        path = folder.appending(path: name).path
        guard mkfifo(path, 0o600) == 0 else { throw TestFailure("mkfifo \(path): \(String(cString: strerror(errno)))") }
        reader = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        // Our own writer keeps the pipe from reporting end-of-file between the child's writes.
        keepOpen = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        guard reader >= 0, keepOpen >= 0 else { throw TestFailure("open \(path): \(String(cString: strerror(errno)))") }
    }

    deinit {
        close(reader)
        close(keepOpen)
    }

    /// The next line a child wrote, waiting at most `timeout` (scaled for slow runs).
    public func nextLine(timeout: Duration = .seconds(30)) async throws -> String {
        let deadline = ContinuousClock.now + TestTiming.bound(timeout)
        return try await onDedicatedThread { [self] in
            while true {
                if let line = pending.takeLine() { return line }
                let left = deadline - ContinuousClock.now
                guard left > .zero else { throw TestFailure("no line on \(path) within \(timeout)") }
                var descriptor = pollfd(fd: reader, events: Int16(POLLIN), revents: 0)
                let milliseconds = Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
                guard poll(&descriptor, 1, max(milliseconds, 1)) > 0 else { continue }
                var buffer = [UInt8](repeating: 0, count: 4096)
                let count = read(reader, &buffer, buffer.count)
                if count > 0 { pending.append(buffer[..<count]) }
            }
        }
    }
}

/// Bytes read but not yet returned as lines.
private final class LockedBuffer: Sendable {
    private let bytes = NIOLockedValueBox<[UInt8]>([])

    func append(_ more: ArraySlice<UInt8>) {
        bytes.withLockedValue { $0.append(contentsOf: more) }
    }

    func takeLine() -> String? {
        bytes.withLockedValue { bytes in
            guard let newline = bytes.firstIndex(of: 0x0A) else { return nil }
            defer { bytes.removeSubrange(...newline) }
            return String(decoding: bytes[..<newline], as: UTF8.self)
        }
    }
}

/// What /proc says about processes, for tests that must show nothing was left behind.
public enum ProcessTable {
    /// The state letter of `pid` (R, S, Z, …), or `nil` when there is no such process.
    public static func state(of pid: Int32) -> Character? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        return stat[stat.index(after: close)...].first { $0 != " " }
    }

    /// Whether `pid` is gone or a zombie (dead, waiting for a parent that is not ours to reap it).
    public static func isDead(_ pid: Int32) -> Bool {
        guard let state = state(of: pid) else { return true }
        return state == "Z" || state == "X"
    }

    /// The pids of this process's children that are zombies.
    public static func zombieChildren() -> [Int32] {
        let me = getpid()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap(Int32.init).filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && fields[0] == "Z" && Int32(fields[1]) == me
        }
    }

    /// How many descriptors this process has open.
    public static var openDescriptors: Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.count ?? 1) - 1
    }

    /// How many threads this process has.
    public static var threads: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task"))?.count ?? 0
    }
}

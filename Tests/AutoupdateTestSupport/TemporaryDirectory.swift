public import Foundation

/// A fresh directory under the system's temporary folder, removed when the value is released.
///
/// The removal runs on a thread of its own: a test's last reference often goes on a thread of
/// the cooperative pool, and removing thousands of files there (seconds on a loaded machine)
/// would starve every other test's tasks, timers included.
public final class TemporaryDirectory: Sendable {
    public let url: URL
    public var path: String { url.path }

    /// - Parameters:
    ///   - inMemory: On tmpfs (`/dev/shm`) when there is one: for tests that create thousands of
    ///     files and need neither a real disk nor durability (a SIGKILL test checks atomicity).
    public init(prefix: String = "autoupdate-test", inMemory: Bool = false) throws {
        let base =
            inMemory && FileManager.default.isWritableFile(atPath: "/dev/shm")
            ? URL(fileURLWithPath: "/dev/shm") : FileManager.default.temporaryDirectory
        url = base.appending(path: "\(prefix)-\(UUID().uuidString)", directoryHint: .isDirectory)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        let url = url
        Thread.detachNewThread {
            try? FileManager.default.removeItem(at: url)
        }
    }
}

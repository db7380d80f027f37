public import Foundation

/// A fresh directory under the system's temporary folder, removed when the value is released.
public final class TemporaryDirectory: Sendable {
    public let url: URL
    public var path: String { url.path }

    /// - Parameters:
    ///   - inMemory: On tmpfs (`/dev/shm`) when there is one: for tests that create thousands of
    ///     files and need neither a real disk nor durability (a SIGKILL test checks atomicity).
    public init(prefix: String = "autoupdate-test", inMemory: Bool = false) throws {
        let base = inMemory && FileManager.default.isWritableFile(atPath: "/dev/shm")
            ? URL(fileURLWithPath: "/dev/shm") : FileManager.default.temporaryDirectory
        url = base.appending(path: "\(prefix)-\(UUID().uuidString)", directoryHint: .isDirectory)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }
}

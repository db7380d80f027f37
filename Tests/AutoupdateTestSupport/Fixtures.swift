public import Autoupdate
public import Foundation

/// Files and configurations tests share.
public enum Fixtures {
    /// Deterministic pseudo-random bytes.
    public static func randomBytes(count: Int, seed: UInt64) -> [UInt8] {
        var random = SeededRandom(seed: seed)
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            var offset = 0
            while offset + 8 <= count {
                raw.storeBytes(of: random.next(), toByteOffset: offset, as: UInt64.self)
                offset += 8
            }
            var last = random.next()
            while offset < count {
                raw[offset] = UInt8(truncatingIfNeeded: last)
                last >>= 8
                offset += 1
            }
            initialized = count
        }
    }

    /// Writes `count` pseudo-random bytes to `folder/name` and returns them.
    @discardableResult
    public static func writeRandomFile(_ name: String, in folder: URL, count: Int, seed: UInt64 = 1) throws -> [UInt8] {
        let bytes = randomBytes(count: count, seed: seed)
        try Data(bytes).write(to: folder.appending(path: name))
        return bytes
    }

    /// Writes a large file quickly: one pseudo-random MiB, each copy stamped with its index.
    public static func writeLargeFile(_ name: String, in folder: URL, mebibytes: Int) throws {
        let block = randomBytes(count: 1 << 20, seed: 99)
        let url = folder.appending(path: name)
        try Data().write(to: url)
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        for index in 0..<mebibytes {
            var copy = block
            withUnsafeBytes(of: UInt64(index).littleEndian) { copy.replaceSubrange(0..<8, with: $0) }
            try handle.write(contentsOf: copy)
        }
    }
}

extension DownloadConfiguration {
    /// Trusts the test CA; short windows so that fault tests finish quickly. The default window
    /// and deadline stretch with every other time bound (see ``TestTiming``); one a test passes
    /// is its own.
    public static func forTests(
        lowSpeedLimit: Int = 1024,
        lowSpeedWindow: Duration = TestTiming.bound(.seconds(5)),
        deadline: Duration = TestTiming.bound(.seconds(60)),
        maxBytes: Int64 = 1 << 30,
        maxRetries: Int = 3,
        caFile: String? = TestPKI.caFile
    ) -> DownloadConfiguration {
        DownloadConfiguration(
            caFile: caFile, connectTimeout: TestTiming.bound(.seconds(5)), lowSpeedLimit: lowSpeedLimit, lowSpeedWindow: lowSpeedWindow,
            deadline: deadline, maxBytes: maxBytes, maxRetries: maxRetries,
            retryDelay: .milliseconds(20), maxRetryDelay: .milliseconds(200))
    }
}

extension UpdaterConfiguration {
    /// The default check timeout, stretched like every time bound of the tests (see ``TestTiming``).
    public static let testCheckTimeout = TestTiming.bound(defaultCheckTimeout)

    /// Trusts the test CA; no retries unless asked; ``testCheckTimeout``.
    public static func forTests(
        archive: ArchiveName = .default, maxRetries: Int = 0, caFile: String? = TestPKI.caFile, trust: TrustPolicy = TrustPolicy(),
        channel: String = "stable", pin: VersionSpecifierSet? = nil
    ) -> UpdaterConfiguration {
        UpdaterConfiguration(
            archive: archive, download: .forTests(maxRetries: maxRetries, caFile: caFile), trust: trust,
            checkTimeout: testCheckTimeout, channel: channel, pin: pin)
    }
}

extension Downloader {
    /// Downloads the whole body into memory (tests only).
    public func collect(_ url: URL, expectedLength: Int64? = nil) async throws -> [UInt8] {
        var body: [UInt8] = []
        for try await chunk in bytes(from: url, expectedLength: expectedLength) {
            body += chunk.bytes
        }
        return body
    }
}

import Foundation

/// Time bounds in tests, stretched under sanitizers: `make tsan` sets
/// `AUTOUPDATE_TEST_TIME_SCALE` because ThreadSanitizer slows every instrumented line.
public enum TestTiming {
    public static let scale: Double = ProcessInfo.processInfo.environment["AUTOUPDATE_TEST_TIME_SCALE"].flatMap(Double.init) ?? 1

    /// `duration` times the scale.
    public static func bound(_ duration: Duration) -> Duration {
        duration * scale
    }
}

extension TestTiming {
    /// Runs `body`, failing with ``TestFailure`` when it takes longer than `timeout` (scaled).
    public static func within<Result: Sendable>(
        _ timeout: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        try await withThrowingTaskGroup(of: Result.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: bound(timeout))
                throw TestFailure("no \(what) within \(timeout)")
            }
            defer { group.cancelAll() }
            guard let result = try await group.next() else { throw TestFailure("no \(what)") }
            return result
        }
    }
}

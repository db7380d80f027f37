import Foundation

/// Time bounds in tests, stretched under sanitizers: `make tsan` sets
/// `AUTOUPDATE_TEST_TIME_SCALE` because ThreadSanitizer slows every instrumented line.
public enum TestTiming {
    public static let scale: Double = ProcessInfo.processInfo.environment["AUTOUPDATE_TEST_TIME_SCALE"].flatMap(Double.init) ?? 1

    /// `duration` times the scale.
    public static func bound(_ duration: Duration) -> Duration {
        duration * scale
    }

    /// The CPU time the calling thread has used: what synchronous work costs, whatever else
    /// the machine runs meanwhile (a wall clock would measure the load too).
    public static func threadCPUTime() -> Duration {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return .seconds(time.tv_sec) + .nanoseconds(time.tv_nsec)
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

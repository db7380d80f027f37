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

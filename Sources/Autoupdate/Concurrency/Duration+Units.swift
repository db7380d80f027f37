#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension Duration {
    /// Whole milliseconds, for C APIs.
    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// In seconds, for arithmetic, Dispatch and Foundation.
    var timeInterval: TimeInterval {
        TimeInterval(components.seconds) + TimeInterval(components.attoseconds) / 1e18
    }

    /// Seconds as a short decimal for messages ("30", "0.5").
    var seconds: String {
        let value = timeInterval
        return value == value.rounded() ? String(Int64(value)) : Self.threeSignificantDigits(value)
    }

    /// `%.3g` for the durations we print (no exponent: a value of 1000 s or more is whole seconds).
    private static func threeSignificantDigits(_ value: Double) -> String {
        guard value.isFinite, value != 0 else { return "0" }
        let magnitude = Int(log10(abs(value)).rounded(.down))
        guard magnitude < 3 else { return String(Int64(value.rounded())) }
        let decimals = max(0, 2 - magnitude)
        let scale = pow(10, Double(decimals))
        let scaled = Int64((abs(value) * scale).rounded())
        let whole = scaled / Int64(scale)
        var fraction = String(scaled % Int64(scale))
        fraction = String(repeating: "0", count: decimals - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return (value < 0 ? "-" : "") + String(whole) + (fraction.isEmpty ? "" : "." + fraction)
    }
}

/// Exponential backoff with jitter: `base × 2^(failure − 1)`, capped at `cap`, times `jitter`
/// (by default a random 0.5–1, so that clients that failed together do not retry together).
func exponentialBackoff(failure: Int, base: Duration, cap: Duration, jitter: Double = .random(in: 0.5...1.0)) -> Duration {
    let exponent = min(max(failure - 1, 0), 30)
    return min(base * (1 << exponent), max(cap, base)) * jitter
}

/// The longest wait a server's `Retry-After` can ask for and get: a day. Longer values (a date in
/// 2099, `Int64.max` seconds) are a misconfigured or hostile server, not a reason to stop
/// checking for a year, nor to overflow a timer.
let maximumRetryAfter = Duration.seconds(86_400)

/// The wait before the next check after a failure: the backoff, or longer when the server asked
/// (`Retry-After`), but never more than `factor` intervals nor ``maximumRetryAfter``.
func delayHonouringRetryAfter(_ retryAfter: Duration?, backoff: Duration, interval: Duration, factor: Int = 4) -> Duration {
    guard let retryAfter, retryAfter > backoff else { return backoff }
    return max(backoff, min(retryAfter, interval * factor, maximumRetryAfter))
}

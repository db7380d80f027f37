import Foundation

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
        return value == value.rounded() ? String(Int64(value)) : String(format: "%.3g", value)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A daily span of local time when `watch` may install (`--window 02:00-04:30`); one that ends
/// before it starts runs past midnight (`22:00-02:00`). Checks and downloads happen at any time.
public struct InstallWindow: Sendable, Hashable, CustomStringConvertible {
    /// Minutes after midnight, local time: `start` included, `end` excluded.
    public let start: Int
    public let end: Int

    /// Parses `HH:MM-HH:MM` (24-hour clock).
    ///
    /// - Throws: ``AutoupdateError`` `.invalidArgument` naming the text and the form it needs.
    public init(_ text: String) throws {
        let bounds = text.split(separator: "-", omittingEmptySubsequences: false)
        func minutes(_ part: Substring) -> Int? {
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 2, fields.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isASCII) }), let hour = Int(fields[0]),
                let minute = Int(fields[1]), (0...23).contains(hour), (0...59).contains(minute)
            else { return nil }
            return hour * 60 + minute
        }
        guard bounds.count == 2, let start = minutes(bounds[0]), let end = minutes(bounds[1]), start != end else {
            throw AutoupdateError(
                .invalidArgument, "install window \(quoted(text)): give HH:MM-HH:MM on a 24-hour clock, such as 02:00-04:30 or 22:00-02:00")
        }
        self.start = start
        self.end = end
    }

    public var description: String {
        func clock(_ minutes: Int) -> String {
            let hours = String(minutes / 60), rest = String(minutes % 60)
            return String(repeating: "0", count: 2 - hours.count) + hours + ":" + String(repeating: "0", count: 2 - rest.count) + rest
        }
        return clock(start) + "-" + clock(end)
    }

    /// Whether `minute` (of the day) is inside.
    func contains(minute: Int) -> Bool {
        start < end ? (start..<end).contains(minute) : minute >= start || minute < end
    }

    /// How long until one of `windows` is open, from `secondOfDay` (local time): zero inside one.
    ///
    /// - Returns: `nil` when there are no windows (installs at any time).
    static func wait(until windows: [InstallWindow], fromSecondOfDay secondOfDay: Int) -> Duration? {
        guard !windows.isEmpty else { return nil }
        let minute = secondOfDay / 60
        if windows.contains(where: { $0.contains(minute: minute) }) {
            return .zero
        }
        let seconds =
            windows.map { window -> Int in
                let ahead = (window.start * 60 - secondOfDay) % 86_400
                return ahead < 0 ? ahead + 86_400 : ahead
            }.min() ?? 0
        return .seconds(seconds)
    }

    /// Seconds since local midnight now (the C library's time zone: `TZ`, else `/etc/localtime`).
    static func localSecondOfDay() -> Int {
        var now = time(nil)
        var parts = tm()
        tzset()
        localtime_r(&now, &parts)
        return Int(parts.tm_hour) * 3600 + Int(parts.tm_min) * 60 + Int(parts.tm_sec)
    }
}

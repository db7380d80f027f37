#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The headers of one HTTP response, as libcurl's header callback delivers them line by line.
///
/// Redirects and interim responses each start with a status line, which resets the collection,
/// so what remains describes the final response.
struct ResponseHeaders {
    private var fields: [String: String] = [:]

    /// Takes one raw header line (`Name: value\r\n` or a status line).
    mutating func take(line: String) {
        if line.hasPrefix("HTTP/") {
            fields = [:]
            return
        }
        guard let colon = line.firstIndex(of: ":") else {
            return
        }
        let name = line[..<colon].trimmingWhitespace().lowercased()
        let value = line[line.index(after: colon)...].trimmingWhitespace(andNewlines: true)
        fields[name] = value
    }

    subscript(name: String) -> String? {
        fields[name.lowercased()]
    }

    var validator: HTTPValidator {
        HTTPValidator(entityTag: self["etag"], lastModified: self["last-modified"])
    }

    /// `Content-Range: bytes first-last/complete` (`complete` may be `*`).
    var contentRange: ContentRange? {
        self["content-range"].flatMap(ContentRange.init(header:))
    }

    /// `Retry-After` as a delay: delta-seconds or an HTTP date (RFC 9110 §10.2.3), capped at
    /// ``maximumRetryAfter``; `nil` when absent or unreadable.
    func retryAfter(now: Date = Date()) -> Duration? {
        guard let value = self["retry-after"], !value.isEmpty else {
            return nil
        }
        let cap = maximumRetryAfter.components.seconds
        if value.allSatisfy({ $0.isASCII && $0.isNumber }) {
            // More digits than Int64 holds is still a (very) long wait.
            return .seconds(Int64(value).map { min($0, cap) } ?? cap)
        }
        guard let date = HTTPDate.parse(value) else {
            return nil
        }
        let seconds = date.timeIntervalSince(now).rounded(.up)
        return .seconds(seconds.isFinite ? Int64(min(max(0, seconds), Double(cap))) : cap)
    }
}

/// A parsed `Content-Range` header of a 206 response.
struct ContentRange: Equatable {
    let first: Int64
    let last: Int64
    /// The full length, when the server gave it.
    let completeLength: Int64?

    init(first: Int64, last: Int64, completeLength: Int64?) {
        self.first = first
        self.last = last
        self.completeLength = completeLength
    }

    init?(header: String) {
        let text = header.trimmingWhitespace()
        guard text.lowercased().hasPrefix("bytes ") else { return nil }
        let spec = text.dropFirst("bytes ".count)
        let parts = spec.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let bounds = parts[0].split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard bounds.count == 2, let first = Int64(bounds[0]), let last = Int64(bounds[1]), first >= 0, last >= first else {
            return nil
        }
        var complete: Int64?
        if parts[1] != "*" {
            guard let length = Int64(parts[1]), length > last else { return nil }
            complete = length
        }
        self.init(first: first, last: last, completeLength: complete)
    }
}

/// HTTP dates (RFC 9110 §5.6.7): the preferred IMF-fixdate and the two obsolete forms, always GMT.
enum HTTPDate {
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37 GMT` or `Sun Nov  6 08:49:37 1994`.
    static func parse(_ text: String) -> Date? {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
        let day: Int?, month: String, year: Int?, time: String
        switch words.count {
        case 6 where words[5] == "GMT":
            // IMF-fixdate: day-name, DD Mon YYYY HH:MM:SS GMT
            guard words[1].count == 2, words[3].count == 4 else { return nil }
            (day, month, year, time) = (Int(words[1]), words[2], Int(words[3]), words[4])
        case 4 where words[3] == "GMT":
            // RFC 850: day-name, DD-Mon-YY HH:MM:SS GMT; a two-digit year within 50 years of now
            let parts = words[1].split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3, parts[0].count == 2, parts[2].count == 2, let short = Int(parts[2]) else { return nil }
            (day, month, year, time) = (Int(parts[0]), parts[1], short < 70 ? 2000 + short : 1900 + short, words[2])
        case 5:
            // asctime: day-name Mon D HH:MM:SS YYYY
            guard words[4].count == 4 else { return nil }
            (day, month, year, time) = (Int(words[2]), words[1], Int(words[4]), words[3])
        default:
            return nil
        }
        let clock = time.split(separator: ":", omittingEmptySubsequences: false)
        guard let day, let year, let monthIndex = months.firstIndex(of: month), clock.count == 3, clock.allSatisfy({ $0.count == 2 }),
            let hour = Int(clock[0]), let minute = Int(clock[1]), let second = Int(clock[2]),
            (1...31).contains(day), (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second)
        else { return nil }
        // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
        let shiftedYear = monthIndex < 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (monthIndex + (monthIndex < 2 ? 10 : -2)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }
}

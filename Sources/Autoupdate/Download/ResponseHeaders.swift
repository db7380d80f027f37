import Foundation

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
        let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
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
        let text = header.trimmingCharacters(in: .whitespaces)
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

/// HTTP dates (RFC 9110 §5.6.7): the preferred IMF-fixdate and the two obsolete forms.
enum HTTPDate {
    static func parse(_ text: String) -> Date? {
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: text) {
                return date
            }
        }
        return nil
    }
}

@testable import Autoupdate
import Foundation
import Testing

@Suite("Response headers")
struct ResponseHeadersTests {
    @Test(
        "Content-Range",
        arguments: [
            ("bytes 0-9/100", ContentRange(first: 0, last: 9, completeLength: 100)),
            ("bytes 50-99/*", ContentRange(first: 50, last: 99, completeLength: nil)),
            ("BYTES 1-1/2", ContentRange(first: 1, last: 1, completeLength: 2)),
        ] as [(String, ContentRange)])
    func contentRange(header: String, expected: ContentRange) {
        #expect(ContentRange(header: header) == expected)
    }

    @Test(
        "malformed Content-Range",
        arguments: ["bytes 9-0/100", "bytes 0-99/50", "bytes */100", "items 0-1/2", "bytes 0-1", "bytes a-b/c", ""])
    func malformedContentRange(header: String) {
        #expect(ContentRange(header: header) == nil)
    }

    @Test("Retry-After as seconds or an HTTP date")
    func retryAfter() {
        var headers = ResponseHeaders()
        headers.take(line: "HTTP/1.1 503 Service Unavailable\r\n")
        headers.take(line: "Retry-After: 120\r\n")
        #expect(headers.retryAfter() == .seconds(120))

        let now = HTTPDate.parse("Wed, 21 Oct 2026 07:28:00 GMT")!
        headers.take(line: "retry-after: Wed, 21 Oct 2026 07:28:30 GMT\r\n")
        #expect(headers.retryAfter(now: now) == .seconds(30))
        headers.take(line: "Retry-After: soon\r\n")
        #expect(headers.retryAfter(now: now) == nil)
    }

    @Test(
        "HTTP dates in their three forms (RFC 9110 §5.6.7), as Unix time; anything else is not a date",
        arguments: [
            ("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777), ("Sunday, 06-Nov-94 08:49:37 GMT", 784_111_777),
            ("Sun Nov  6 08:49:37 1994", 784_111_777), ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
            ("Mon, 29 Feb 2028 23:59:59 GMT", 1_835_481_599), ("Fri, 01 Jan 2099 00:00:00 GMT", 4_070_908_800),
            ("Wednesday, 01-Mar-00 12:00:00 GMT", 951_912_000),
        ] as [(String, Int64)])
    func httpDate(text: String, unixTime: Int64) {
        #expect(HTTPDate.parse(text).map { Int64($0.timeIntervalSince1970) } == unixTime)
    }

    @Test(
        "not HTTP dates",
        arguments: [
            "", "soon", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Nox 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:49 GMT", "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sun Nov  6 08:49:37 94",
        ])
    func notHTTPDates(text: String) {
        #expect(HTTPDate.parse(text) == nil)
    }

    @Test(
        "numbers as we print them: fixed decimals, plain percentages, three significant digits for seconds",
        arguments: [
            (decimal(2.25, places: 1), "2.3"), (decimal(0.04, places: 1), "0.0"), (decimal(-1.5, places: 1), "-1.5"),
            (decimal(1234.5678, places: 2), "1234.57"), (decimal(3, places: 0), "3"), (decimal(-0.01, places: 1), "0.0"),
            (plainNumber(5), "5"), (plainNumber(12.5), "12.5"), (plainNumber(0.25), "0.25"),
            (Duration.milliseconds(500).seconds, "0.5"), (Duration.milliseconds(2250).seconds, "2.25"),
            (Duration.milliseconds(12_345).seconds, "12.3"), (Duration.seconds(30).seconds, "30"),
            (Duration.milliseconds(1).seconds, "0.001"), (Duration.milliseconds(9996).seconds, "10"),
            (Date(timeIntervalSince1970: 784_111_777).iso8601, "1994-11-06T08:49:37Z"),
            (" \t a b \n".trimmingWhitespace(), "a b \n"), (" \t a b \n".trimmingWhitespace(andNewlines: true), "a b"),
            ("/a/b/c.txt".lastPathComponent, "c.txt"), ("/a/b/c.txt".deletingLastPathComponent, "/a/b"),
            ("/x".deletingLastPathComponent, "/"),
            (UInt8(10).hex(width: 2), "0a"),
        ] as [(String, String)])
    func printedNumbers(printed: String, expected: String) {
        #expect(printed == expected)
    }

    @Test(
        "Retry-After is capped at a day, whatever the server says",
        arguments: [
            ("9223372036854775807", 86_400), ("99999999999999999999999", 86_400), ("31536000", 86_400), ("86401", 86_400),
            ("Fri, 01 Jan 2099 00:00:00 GMT", 86_400), ("Thu, 01 Jan 1970 00:00:00 GMT", 0), ("0", 0), ("3600", 3600),
        ] as [(String, Int64)])
    func retryAfterCap(header: String, seconds: Int64) {
        var headers = ResponseHeaders()
        headers.take(line: "Retry-After: \(header)\r\n")
        #expect(headers.retryAfter() == .seconds(seconds))
    }

    @Test(
        "the next check honours Retry-After within bounds",
        arguments: [
            // (Retry-After, backoff, interval, expected)
            (nil, 2, 300, 2), (1, 2, 300, 2), (60, 2, 300, 60), (86_400, 2, 300, 1200), (86_400, 2, 60_000, 86_400),
        ] as [(Int64?, Int64, Int64, Int64)])
    func retryPolicy(retryAfter: Int64?, backoff: Int64, interval: Int64, expected: Int64) {
        let delay = delayHonouringRetryAfter(retryAfter.map { .seconds($0) }, backoff: .seconds(backoff), interval: .seconds(interval))
        #expect(delay == .seconds(expected))
    }

    @Test("a status line starts a new response (redirects)")
    func statusLineResets() {
        var headers = ResponseHeaders()
        headers.take(line: "HTTP/1.1 302 Found\r\n")
        headers.take(line: "ETag: \"old\"\r\n")
        headers.take(line: "HTTP/1.1 200 OK\r\n")
        headers.take(line: "Last-Modified: Wed, 21 Oct 2026 07:28:00 GMT\r\n")
        #expect(headers.validator == HTTPValidator(entityTag: nil, lastModified: "Wed, 21 Oct 2026 07:28:00 GMT"))
    }

    @Test("validators match only the same representation")
    func validatorMatching() {
        let strong = HTTPValidator(entityTag: "\"a\"", lastModified: "x")
        #expect(strong.matches(HTTPValidator(entityTag: "\"a\"", lastModified: "y")))
        #expect(!strong.matches(HTTPValidator(entityTag: "\"b\"", lastModified: "x")))
        let weak = HTTPValidator(entityTag: "W/\"a\"", lastModified: "x")
        #expect(weak.ifRangeValue == "x", "weak tags are not used for ranges")
        #expect(weak.matches(HTTPValidator(entityTag: nil, lastModified: "x")))
        #expect(!HTTPValidator().matches(HTTPValidator()))
    }
}

@testable import Autoupdate
import Foundation
import Testing

/// Every rule of a download, without a server: each scenario feeds the machine what libcurl
/// would report and checks what it decides. (The same rules through a real server and real
/// faults: `DownloaderTests`.)
@Suite("Download state machine")
struct DownloadStateMachineTests {
    typealias Machine = DownloadStateMachine

    enum Expected: Equatable, CustomStringConvertible {
        case complete
        case retry(seconds: Double)
        case fail(AutoupdateError.Code, containing: String)
        case cancelled

        var description: String {
            switch self {
            case .complete: "complete"
            case .retry(let seconds): "retry after \(seconds) s"
            case .fail(let code, let text): "fail(\(code), \(text))"
            case .cancelled: "cancelled"
            }
        }

        static func from(_ action: Machine.EndAction) -> String {
            switch action {
            case .complete: "complete"
            case .retry(let delay, _): "retry after \(delay.timeInterval) s"
            case .fail(let error): "fail(\(error.code), \(error.message))"
            case .cancelled: "cancelled"
            }
        }

        func matches(_ action: Machine.EndAction) -> Bool {
            switch (self, action) {
            case (.complete, .complete), (.cancelled, .cancelled): true
            case (.retry(let seconds), .retry(let delay, _)): abs(delay.timeInterval - seconds) < 1e-9
            case (.fail(let code, let text), .fail(let error)): error.code == code && error.message.contains(text)
            default: false
            }
        }
    }

    enum Step: Sendable {
        /// An attempt starts: it must ask for this offset with these header lines.
        case start(offset: Int64, headers: [String] = [])
        case headers([String])
        /// A body read of `count` bytes, the response being `status` with this Content-Length.
        case body(Int, status: Int = 200, length: Int64? = nil, expect: Machine.BodyAction)
        /// Network time is now `seconds`.
        case tick(Double, expect: Machine.Abort?)
        case cancel
        case end(Machine.TransportEnd, status: Int = 200, expect: Expected)
        /// The wait before a retry ended at `seconds`.
        case retryWaitEnded(Double, fails: Bool)
    }

    struct Scenario: CustomTestStringConvertible, Sendable {
        let name: String
        let expectedLength: Int64?
        let conditional: HTTPValidator?
        let range: ClosedRange<Int64>?
        let completeLength: Int64?
        let ranges: [ClosedRange<Int64>]?
        let steps: [Step]
        var testDescription: String { name }

        init(
            _ name: String, expectedLength: Int64? = nil, conditional: HTTPValidator? = nil, range: ClosedRange<Int64>? = nil,
            completeLength: Int64? = nil, ranges: [ClosedRange<Int64>]? = nil, _ steps: [Step]
        ) {
            self.ranges = ranges
            self.name = name
            self.expectedLength = expectedLength ?? range.map { $0.upperBound - $0.lowerBound + 1 }
            self.conditional = conditional
            self.range = range
            self.completeLength = completeLength
            self.steps = steps
        }
    }

    static let etag = ["ETag: \"v1\""]
    static let transient = Machine.TransportEnd.failed(.init(kind: .transient, detail: "Connection reset"))

    static let scenarios: [Scenario] = [
        Scenario(
            "several ranges in one request: a multipart 206 goes on as it comes (its parts are the caller's to check)",
            ranges: [100...199, 500...599],
            [
                .start(offset: 0, headers: ["Range: bytes=100-199,500-599"]),
                .headers(etag + ["Content-Type: multipart/byteranges; boundary=3d6b6a416f9b5"]),
                .body(150, status: 206, expect: .deliver(skip: 0)),
                .body(150, status: 206, expect: .deliver(skip: 0)),
                .end(.completed, status: 206, expect: .complete),
            ]),
        Scenario(
            "several ranges answered with the whole file, or with one range, fail at once: the caller asks one by one",
            ranges: [100...199, 500...599],
            [
                .start(offset: 0, headers: ["Range: bytes=100-199,500-599"]),
                .headers(["Content-Range: bytes 100-599/1000", "Content-Type: application/zip"]),
                .body(10, status: 206, length: 500, expect: .abort(.rangeNotHonoured(status: 206, contentRange: "bytes 100-599/1000"))),
                .end(.aborted, status: 206, expect: .fail(.rangeNotHonoured, containing: "asked for bytes 100-199,500-599")),
            ]),
        Scenario(
            "a ranged request asks for its bytes and takes a 206 with exactly them", range: 100...199, completeLength: 1000,
            [
                .start(offset: 0, headers: ["Range: bytes=100-199"]),
                .headers(etag + ["Content-Range: bytes 100-199/1000"]),
                .body(60, status: 206, length: 100, expect: .deliver(skip: 0)),
                .body(40, status: 206, expect: .deliver(skip: 0)),
                .end(.completed, status: 206, expect: .complete),
            ]),
        Scenario(
            "a server that ignores Range (200) fails the ranged request at once, without a retry", range: 100...199,
            completeLength: 1000,
            [
                .start(offset: 0, headers: ["Range: bytes=100-199"]),
                .headers(etag),
                .body(10, status: 200, length: 1000, expect: .abort(.rangeNotHonoured(status: 200, contentRange: nil))),
                .end(
                    .aborted,
                    expect: .fail(
                        .rangeNotHonoured, containing: "does not honour Range: asked for bytes 100-199/1000, it answered HTTP 200")),
            ]),
        Scenario(
            "another range, or another complete length than the index's, fails the same way", range: 100...199, completeLength: 1000,
            [
                .start(offset: 0, headers: ["Range: bytes=100-199"]),
                .headers(["Content-Range: bytes 100-199/999"]),
                .body(10, status: 206, length: 100, expect: .abort(.rangeNotHonoured(status: 206, contentRange: "bytes 100-199/999"))),
                .end(.aborted, status: 206, expect: .fail(.rangeNotHonoured, containing: "Content-Range bytes 100-199/999")),
            ]),
        Scenario(
            "a dropped ranged transfer resumes for the rest of its range, for the same representation", range: 100...199,
            completeLength: 1000,
            [
                .start(offset: 0, headers: ["Range: bytes=100-199"]),
                .headers(etag + ["Content-Range: bytes 100-199/1000"]),
                .body(40, status: 206, length: 100, expect: .deliver(skip: 0)),
                .end(transient, status: 206, expect: .retry(seconds: 1)),
                .retryWaitEnded(1, fails: false),
                .start(offset: 40, headers: ["Range: bytes=140-199", "If-Range: \"v1\""]),
                .headers(etag + ["Content-Range: bytes 140-199/1000"]),
                .body(60, status: 206, length: 60, expect: .deliver(skip: 0)),
                .end(.completed, status: 206, expect: .complete),
            ]),
        Scenario(
            "a 416 to a ranged request: the file is shorter than its index says", range: 100...199, completeLength: 1000,
            [
                .start(offset: 0, headers: ["Range: bytes=100-199"]),
                .end(
                    .failed(.init(kind: .httpStatus(416, effectiveURL: nil), detail: "416")), status: 416,
                    expect: .fail(.rangeNotHonoured, containing: "has no bytes 100-199 (HTTP 416)")),
            ]),
        Scenario(
            "a plain download completes", expectedLength: 10,
            [
                .start(offset: 0),
                .headers(etag),
                .body(6, length: 10, expect: .deliver(skip: 0)),
                .body(4, expect: .deliver(skip: 0)),
                .end(.completed, expect: .complete),
            ]),
        Scenario(
            "a conditional request asks with both validators and accepts a 304",
            conditional: HTTPValidator(entityTag: "\"v1\"", lastModified: "Tue, 01 Dec 2026 00:00:00 GMT"),
            [
                .start(offset: 0, headers: ["If-None-Match: \"v1\"", "If-Modified-Since: Tue, 01 Dec 2026 00:00:00 GMT"]),
                .end(.completed, status: 304, expect: .complete),
            ]),
        Scenario(
            "a 304 to an unconditional request is refused",
            [
                .start(offset: 0),
                .end(.completed, status: 304, expect: .fail(.httpStatus, containing: "unexpected HTTP status 304")),
            ]),
        Scenario(
            "a dropped connection resumes with Range and If-Range", expectedLength: 10,
            [
                .start(offset: 0),
                .headers(etag),
                .body(4, length: 10, expect: .deliver(skip: 0)),
                .end(transient, expect: .retry(seconds: 1)),
                .retryWaitEnded(1, fails: false),
                .start(offset: 4, headers: ["Range: bytes=4-", "If-Range: \"v1\""]),
                .headers(["HTTP/1.1 206 Partial Content", "ETag: \"v1\"", "Content-Range: bytes 4-9/10"]),
                .body(6, status: 206, length: 6, expect: .deliver(skip: 0)),
                .end(.completed, status: 206, expect: .complete),
            ]),
        Scenario(
            "a 206 at the wrong offset stops ranges; the next attempt starts over and skips what was delivered", expectedLength: 10,
            [
                .start(offset: 0),
                .headers(etag),
                .body(4, length: 10, expect: .deliver(skip: 0)),
                .end(transient, expect: .retry(seconds: 1)),
                .start(offset: 4, headers: ["Range: bytes=4-", "If-Range: \"v1\""]),
                .headers(["HTTP/1.1 206 Partial Content", "Content-Range: bytes 2-9/10"]),
                .body(8, status: 206, expect: .abort(.badContentRange("bytes 2-9/10"))),
                // No progress in this attempt: the second failure in a row waits twice as long.
                .end(.aborted, status: 206, expect: .retry(seconds: 2)),
                .start(offset: 4),
                .headers(["HTTP/1.1 200 OK"] + etag),
                .body(3, length: 10, expect: .deliver(skip: 3)),
                .body(3, expect: .deliver(skip: 1)),
                .body(4, expect: .deliver(skip: 0)),
                .end(.completed, expect: .complete),
            ]),
        Scenario(
            "a 206 that disagrees on the complete length is a wrong range",
            [
                .start(offset: 0),
                .headers(etag),
                .body(4, length: 10, expect: .deliver(skip: 0)),
                .end(transient, expect: .retry(seconds: 1)),
                .start(offset: 4, headers: ["Range: bytes=4-", "If-Range: \"v1\""]),
                .headers(["HTTP/1.1 206 Partial Content", "Content-Range: bytes 4-11/12"]),
                .body(8, status: 206, expect: .abort(.badContentRange("bytes 4-11/12"))),
            ]),
        Scenario(
            "a 200 answering a Range for the same file skips the bytes already delivered",
            [
                .start(offset: 0),
                .headers(etag),
                .body(5, length: 8, expect: .deliver(skip: 0)),
                .end(transient, expect: .retry(seconds: 1)),
                .start(offset: 5, headers: ["Range: bytes=5-", "If-Range: \"v1\""]),
                .headers(["HTTP/1.1 200 OK"] + etag),
                .body(8, length: 8, expect: .deliver(skip: 5)),
                .end(.completed, expect: .complete),
            ]),
        Scenario(
            "a changed validator on resume ends the download",
            [
                .start(offset: 0),
                .headers(etag),
                .body(5, length: 8, expect: .deliver(skip: 0)),
                .end(transient, expect: .retry(seconds: 1)),
                .start(offset: 5, headers: ["Range: bytes=5-", "If-Range: \"v1\""]),
                .headers(["HTTP/1.1 200 OK", "ETag: \"v2\""]),
                .body(8, length: 8, expect: .abort(.contentChanged)),
                .end(.aborted, expect: .fail(.network, containing: "the file changed on the server")),
            ]),
        Scenario(
            "a changed length on resume ends the download",
            [
                .start(offset: 0),
                .headers(etag),
                .body(5, length: 8, expect: .deliver(skip: 0)),
                .end(transient, expect: .retry(seconds: 1)),
                .start(offset: 5, headers: ["Range: bytes=5-", "If-Range: \"v1\""]),
                .headers(["HTTP/1.1 200 OK"] + etag),
                .body(9, length: 9, expect: .abort(.contentChanged)),
            ]),
        Scenario(
            "without a strong validator a resume cannot ask for a range",
            [
                .start(offset: 0),
                .headers(["ETag: W/\"weak\""]),
                .body(5, length: 8, expect: .deliver(skip: 0)),
                .end(transient, expect: .retry(seconds: 1)),
                .start(offset: 5),
            ]),
        Scenario(
            "an announced length other than the expected one fails before any byte", expectedLength: 10,
            [
                .start(offset: 0),
                .body(4, length: 12, expect: .abort(.tooLarge(12))),
                .end(.aborted, expect: .fail(.sizeLimitExceeded, containing: "larger than the limit of 10 bytes")),
            ]),
        Scenario(
            "a shorter announced length than expected is a length mismatch", expectedLength: 10,
            [
                .start(offset: 0),
                .body(4, length: 8, expect: .abort(.lengthMismatch(announced: 8))),
                .end(.aborted, expect: .fail(.checksumMismatch, containing: "announced 8 bytes, expected 10")),
            ]),
        Scenario(
            "a body longer than its header said is cut at the cap", expectedLength: 6,
            [
                .start(offset: 0),
                .body(4, length: 6, expect: .deliver(skip: 0)),
                .body(4, expect: .abort(.tooLarge(8))),
                .end(.aborted, expect: .fail(.sizeLimitExceeded, containing: "(8 bytes or more)")),
            ]),
        Scenario(
            "a body shorter than expected fails at the end", expectedLength: 10,
            [
                .start(offset: 0),
                .body(4, expect: .deliver(skip: 0)),
                .end(.completed, expect: .fail(.checksumMismatch, containing: "received 4 bytes, expected 10")),
            ]),
        Scenario(
            "HTTP 416 on resume means the announced length was a lie",
            [
                .start(offset: 0),
                .headers(etag),
                .body(5, length: 9, expect: .deliver(skip: 0)),
                .end(transient, expect: .retry(seconds: 1)),
                .start(offset: 5, headers: ["Range: bytes=5-", "If-Range: \"v1\""]),
                .end(
                    .failed(.init(kind: .httpStatus(416, effectiveURL: nil), detail: "416")), status: 416,
                    expect: .fail(.network, containing: "announced 9 bytes but has none after byte 5")),
            ]),
        Scenario(
            "an HTTP error carries Retry-After and is not retried",
            [
                .start(offset: 0),
                .headers(["HTTP/1.1 503 Service Unavailable", "Retry-After: 120"]),
                .end(
                    .failed(.init(kind: .httpStatus(503, effectiveURL: nil), detail: "503")), status: 503,
                    expect: .fail(.httpStatus, containing: "HTTP 503 and asked to retry after 120 s")),
            ]),
        Scenario(
            "retries without progress stop after maxRetries, with growing delays",
            [
                .start(offset: 0),
                .end(transient, status: 0, expect: .retry(seconds: 1)),
                .start(offset: 0),
                .end(transient, status: 0, expect: .retry(seconds: 2)),
                .start(offset: 0),
                .end(transient, status: 0, expect: .fail(.network, containing: "the connection failed after 0 bytes")),
            ]),
        Scenario(
            "progress resets the count of failures in a row",
            [
                .start(offset: 0),
                .end(transient, status: 0, expect: .retry(seconds: 1)),
                .start(offset: 0),
                .headers(etag),
                .body(3, length: 100, expect: .deliver(skip: 0)),
                .end(transient, expect: .retry(seconds: 1)),
                .start(offset: 3, headers: ["Range: bytes=3-", "If-Range: \"v1\""]),
                .end(transient, status: 0, expect: .retry(seconds: 2)),
            ]),
        Scenario(
            "no connection within the connect timeout is retried with its own message",
            [
                .start(offset: 0),
                .end(
                    .failed(.init(kind: .timedOut, detail: "Connection timed out")), status: 0,
                    expect: .retry(seconds: 1)),
                .start(offset: 0),
                .end(
                    .failed(.init(kind: .timedOut, detail: "Connection timed out")), status: 0,
                    expect: .retry(seconds: 2)),
                .start(offset: 0),
                .end(
                    .failed(.init(kind: .timedOut, detail: "Connection timed out")), status: 0,
                    expect: .fail(.timeout, containing: "no connection within 15 s")),
            ]),
        Scenario(
            "a TLS failure is final",
            [
                .start(offset: 0),
                .end(
                    .failed(.init(kind: .tls(untrustedPeer: true), detail: "certificate verify failed")), status: 0,
                    expect: .fail(.tls, containing: "a private CA can be added with caFile")),
            ]),
        Scenario(
            "a redirect to http is refused, finally",
            [
                .start(offset: 0),
                .end(
                    .failed(.init(kind: .redirectRefused(target: "http://example.test/x?secret=1"), detail: "")), status: 302,
                    expect: .fail(.network, containing: "refused to follow a redirect to http://example.test/x: only https")),
            ]),
        Scenario(
            "too many redirects are final",
            [
                .start(offset: 0),
                .end(
                    .failed(.init(kind: .tooManyRedirects, detail: "")), status: 302,
                    expect: .fail(.network, containing: "more than 5 redirects")),
            ]),
        Scenario(
            "a stalled window aborts and retries; a drip across reconnects gets no fresh window",
            [
                .start(offset: 0),
                .headers(etag),
                .body(100, length: 100_000, expect: .deliver(skip: 0)),
                .tick(5, expect: nil),
                // 100 bytes in 10 s: under the floor of 100 B/s... at 10 B/s.
                .tick(10, expect: .stalled),
                .end(.aborted, expect: .retry(seconds: 1)),
                .start(offset: 100, headers: ["Range: bytes=100-", "If-Range: \"v1\""]),
                .headers(["HTTP/1.1 206 Partial Content", "ETag: \"v1\"", "Content-Range: bytes 100-99999/100000"]),
                .body(50, status: 206, expect: .deliver(skip: 0)),
                .tick(20, expect: .stalled),
                // Stalled attempts are no progress: the count goes on.
                .end(.aborted, status: 206, expect: .retry(seconds: 2)),
                .start(offset: 150, headers: ["Range: bytes=150-", "If-Range: \"v1\""]),
                .tick(30, expect: .tooSlow(windows: 3)),
                .end(.aborted, status: 0, expect: .fail(.timeout, containing: "in 3 windows of 10 s in a row")),
            ]),
        Scenario(
            "a fast window resets the slow count",
            [
                .start(offset: 0),
                .body(10, expect: .deliver(skip: 0)),
                .tick(10, expect: .stalled),
                .end(.aborted, expect: .retry(seconds: 1)),
                .start(offset: 10),
                .body(5000, expect: .deliver(skip: 10)),
                .tick(20, expect: nil),
            ]),
        Scenario(
            "the deadline ends an attempt and a wait before a retry",
            [
                .start(offset: 0),
                .body(100_000, expect: .deliver(skip: 0)),
                .tick(101, expect: .deadlineExceeded),
                .end(.aborted, expect: .fail(.timeout, containing: "not finished within the deadline of 100 s")),
            ]),
        Scenario(
            "a retry whose wait ends past the deadline fails",
            [
                .start(offset: 0),
                .end(transient, status: 0, expect: .retry(seconds: 1)),
                .retryWaitEnded(100.5, fails: true),
            ]),
        Scenario(
            "a cancellation is not retried",
            [
                .start(offset: 0),
                .body(10, expect: .deliver(skip: 0)),
                .cancel,
                .end(.aborted, expect: .cancelled),
            ]),
    ]

    static func configuration() -> DownloadConfiguration {
        DownloadConfiguration(
            lowSpeedLimit: 100, lowSpeedWindow: .seconds(10), deadline: .seconds(100), maxBytes: 1_000_000,
            maxRetries: 2, retryDelay: .seconds(1), maxRetryDelay: .seconds(4))
    }

    @Test("rules", arguments: scenarios)
    func rules(_ scenario: Scenario) throws {
        let request = TransferRequest(
            url: try #require(URL(string: "https://example.test/app.tar.gz")), configuration: Self.configuration(),
            conditional: scenario.conditional, expectedLength: scenario.expectedLength, maxBytes: 1_000_000,
            range: scenario.range, ranges: scenario.ranges, completeLength: scenario.completeLength)
        var machine = Machine(request: request, jitter: { 1 })
        for (index, step) in scenario.steps.enumerated() {
            let at = "step \(index + 1)"
            switch step {
            case .start(let offset, let headers):
                #expect(machine.startAttempt() == Machine.AttemptRequest(offset: offset, headers: headers), "\(at)")
            case .headers(let lines):
                lines.forEach { machine.headerLine($0 + "\r\n") }
            case .body(let count, let status, let length, let expected):
                let action = machine.bodyReceived(count, response: .init(status: status, contentLength: length))
                #expect(action == expected, "\(at)")
            case .tick(let seconds, let expected):
                #expect(machine.tick(now: .seconds(seconds)) == expected, "\(at)")
            case .cancel:
                machine.cancel()
            case .end(let end, let status, let expected):
                let action = machine.attemptEnded(end, response: .init(status: status))
                #expect(expected.matches(action), "\(at): \(Expected.from(action)), expected \(expected)")
            case .retryWaitEnded(let seconds, let fails):
                #expect((machine.retryWaitEnded(now: .seconds(seconds)) != nil) == fails, "\(at)")
            }
        }
    }

    @Test("attempts are capped in all, progress or not")
    func attemptCap() throws {
        let request = TransferRequest(
            url: try #require(URL(string: "https://example.test/a")), configuration: Self.configuration(),
            conditional: nil, expectedLength: nil, maxBytes: 1_000_000)
        var machine = Machine(request: request, jitter: { 1 })
        var attempts = 0
        var last: Machine.EndAction = .complete
        repeat {
            let offset = machine.startAttempt().offset
            attempts += 1
            machine.headerLine("ETag: \"v1\"\r\n")
            machine.headerLine("Content-Range: bytes \(offset)-\(offset)/*\r\n")
            let body = machine.bodyReceived(1, response: .init(status: offset == 0 ? 200 : 206, contentLength: nil))
            #expect(body == .deliver(skip: 0))
            last = machine.attemptEnded(Self.transient, response: .init(status: 200))
        } while attempts < 100 && Expected.from(last).hasPrefix("retry")
        // maxRetries 2: at most 2 × 10 + 1 attempts, each making a byte of progress.
        #expect(attempts == 21)
        #expect(Expected.fail(.network, containing: "the connection failed").matches(last))
    }
}

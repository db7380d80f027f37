#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Every decision of a download, sans I/O: which request each attempt makes (resume with
/// `Range` + `If-Range`, or a conditional request), whether a response may be spliced onto what
/// the consumer already has, which body bytes go on, when the server is too slow or too late,
/// and whether a failed attempt is retried, after how long, or ends the download with which
/// error. ``TransferRunner`` owns libcurl and only feeds this machine: header lines, response
/// heads, body sizes, clock ticks and how each attempt ended, in network time (time spent
/// waiting for a slow consumer excluded, so our own disk never counts against the server).
///
/// Rules (each has a table test):
/// - A resumed attempt asks for `bytes=<received>-` only when the first response gave a strong
///   validator; a 206 must start exactly there and agree on the complete length, else ranges
///   are distrusted and later attempts start from zero. A 200 to a resume is accepted only for
///   the same representation, and its first bytes, already delivered, are skipped: the consumer
///   never sees a byte twice. A changed validator ends the download (`contentChanged`).
/// - The body may not exceed the expected length or the cap, whatever the headers say; an
///   announced length that differs from the expected one fails before any byte goes on.
/// - The low-speed floor is judged over the whole download in windows: a server that drips
///   bytes and closes the connection before a window ends gets no fresh window, and more slow
///   windows in a row than retries allow end the download.
/// - A failed attempt is retried (resuming) with exponential backoff, only for transient
///   failures; an attempt that made progress resets the count, a stalled one does not; attempts
///   are capped in all at `maxRetries × 10 + 1`; the deadline covers retries and their waits.
struct DownloadStateMachine {
    /// Why an attempt was stopped from our side.
    enum Abort: Equatable, Sendable {
        case cancelled
        case stalled
        /// Stalled for more windows in a row than retries allow, across attempts.
        case tooSlow(windows: Int)
        case deadlineExceeded
        case tooLarge(Int64)
        case contentChanged
        case badContentRange(String?)
        /// A ranged request answered with the whole file (200), or with another range.
        case rangeNotHonoured(status: Int, contentRange: String?)
        case lengthMismatch(announced: Int64)
        case unexpectedStatus(Int)
    }

    /// What the response of the current attempt says, read from the transport when its body starts.
    struct Response: Equatable, Sendable {
        var status: Int
        /// The body's length as announced (`Content-Length`), if it was.
        var contentLength: Int64?
    }

    /// How the transport ended an attempt.
    enum TransportEnd: Sendable {
        /// The response is complete.
        case completed
        /// Stopped by an ``Abort`` this machine returned, or by ``cancel()``.
        case aborted
        /// The transport failed.
        case failed(TransportFailure)
    }

    /// A transport failure, as the owner of the transport classifies it.
    struct TransportFailure: Sendable {
        enum Kind: Equatable, Sendable {
            /// An HTTP error status ended the response before its body.
            case httpStatus(Int, effectiveURL: URL?)
            /// A redirect to a scheme other than https.
            case redirectRefused(target: String?)
            case tooManyRedirects
            /// The announced length exceeds the transport's own cap.
            case fileSizeExceeded
            case timedOut
            /// TLS failed; `untrustedPeer` when the certificate did not verify.
            case tls(untrustedPeer: Bool)
            /// The connection dropped, reset or never came up.
            case transient
            case other
        }

        var kind: Kind
        /// The transport's own words.
        var detail: String
        /// The transport's code, kept as the error's `underlying`.
        var underlying: (any Error)?

        init(kind: Kind, detail: String, underlying: (any Error)? = nil) {
            self.kind = kind
            self.detail = detail
            self.underlying = underlying
        }
    }

    /// The request of one attempt.
    struct AttemptRequest: Equatable, Sendable {
        /// The first body byte asked for.
        var offset: Int64
        /// Extra request header lines.
        var headers: [String]
    }

    enum BodyAction: Equatable, Sendable {
        /// Hand on the bytes after the first `skip` of this read (none, if `skip` is its size).
        case deliver(skip: Int)
        /// Stop the attempt.
        case abort(Abort)
    }

    enum EndAction {
        /// The download is complete.
        case complete
        /// Wait, then start the next attempt (``retryWaitEnded(now:)`` says whether it may).
        case retry(after: Duration, because: AutoupdateError)
        case fail(AutoupdateError)
        case cancelled
    }

    private struct Attempt {
        var offset: Int64 = 0
        var sentRange = false
        /// The response as judged at its first body byte.
        var response: Response?
        var responseChecked = false
        /// The status when the attempt ended (0 when no response came).
        var finalStatus = 0
        /// Bytes at the start of a full (200) response that were already delivered.
        var skip: Int64 = 0
        var headers = ResponseHeaders()
        var abort: Abort?
        /// Body bytes off the network in this attempt, skipped ones included.
        var networkBytes: Int64 = 0
    }

    let request: TransferRequest
    private let jitter: @Sendable () -> Double
    private var attempt = Attempt()
    private var attempts = 0
    private var failuresInARow = 0
    /// Body bytes accepted for the consumer.
    private(set) var received: Int64 = 0
    private var receivedAtAttemptStart: Int64 = 0
    /// The representation being downloaded, from its first response.
    private(set) var validator: HTTPValidator?
    private(set) var totalLength: Int64?
    /// The server answered a range request wrongly: later attempts restart from zero.
    private var rangesBroken = false
    /// Body bytes off the network in all attempts (the low-speed floor spans them).
    private var networkBytes: Int64 = 0
    private var windowStart: Duration = .zero
    private var windowStartBytes: Int64 = 0
    private var slowWindows = 0

    /// - Parameter jitter: The backoff's random factor, in 0.5...1 (fixed in tests).
    init(request: TransferRequest, jitter: @escaping @Sendable () -> Double = { .random(in: 0.5...1) }) {
        self.request = request
        self.jitter = jitter
    }

    private var configuration: DownloadConfiguration { request.configuration }
    /// The URL as messages name it, with the proxy it goes through (its credentials left out).
    private var url: String {
        guard let proxy = configuration.proxy else { return request.displayURL }
        var shown = proxy
        if let scheme = proxy.firstRange(of: "://"), let at = proxy.lastIndex(of: "@"), at > scheme.upperBound {
            shown = String(proxy[..<scheme.upperBound]) + String(proxy[proxy.index(after: at)...])
        }
        return request.displayURL + " through the proxy " + shown
    }

    /// The most body bytes accepted.
    var cap: Int64 { request.expectedLength ?? request.maxBytes }

    /// The stop of the current attempt, once one was decided.
    var abort: Abort? { attempt.abort }

    /// The status and validator of the last response.
    var finalHead: ResponseHead {
        ResponseHead(status: attempt.finalStatus, validator: attempt.headers.validator)
    }

    // MARK: Events

    /// A new attempt starts: what to ask for.
    mutating func startAttempt() -> AttemptRequest {
        attempts += 1
        receivedAtAttemptStart = received
        attempt = Attempt(offset: received)
        var headers: [String] = []
        if let ranges = request.ranges {
            // Several ranges in one request: never resumed (the caller keeps what came).
            headers.append("Range: bytes=" + ranges.map { "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ","))
            attempt.sentRange = true
        } else if let range = request.range {
            // Only these bytes; a resume asks for the rest of them, for the same representation.
            headers.append("Range: bytes=\(range.lowerBound + received)-\(range.upperBound)")
            if received > 0, let ifRange = validator?.ifRangeValue {
                headers.append("If-Range: \(ifRange)")
            }
            attempt.sentRange = true
        } else if received > 0 {
            // Resume from where the last attempt stopped, but only for the same representation.
            if !rangesBroken, let ifRange = validator?.ifRangeValue {
                headers += ["Range: bytes=\(received)-", "If-Range: \(ifRange)"]
                attempt.sentRange = true
            }
        } else if let conditional = request.conditional {
            if let tag = conditional.entityTag {
                headers.append("If-None-Match: \(tag)")
            }
            if let date = conditional.lastModified {
                headers.append("If-Modified-Since: \(date)")
            }
        }
        return AttemptRequest(offset: attempt.offset, headers: headers)
    }

    /// A response header line (status lines included: a redirect's headers are replaced).
    mutating func headerLine(_ line: String) {
        attempt.headers.take(line: line)
    }

    /// `count` body bytes arrived; `response` is read once, at the first.
    mutating func bodyReceived(_ count: Int, response: @autoclosure () -> Response) -> BodyAction {
        attempt.networkBytes += Int64(count)
        networkBytes += Int64(count)
        if let abort = checkResponseOnce(response()) {
            return .abort(abort)
        }
        let skip = Int(min(attempt.skip, Int64(count)))
        attempt.skip -= Int64(skip)
        let body = Int64(count - skip)
        guard received + body <= cap else {
            return .abort(stop(.tooLarge(received + body)))
        }
        received += body
        return .deliver(skip: skip)
    }

    /// Time has passed (network time since the download started).
    ///
    /// - Returns: The abort, when the deadline passed or the floor was missed for a window.
    mutating func tick(now: Duration) -> Abort? {
        if now > configuration.deadline {
            return stop(.deadlineExceeded)
        }
        let elapsed = now - windowStart
        guard elapsed >= configuration.lowSpeedWindow else {
            return nil
        }
        let bytes = networkBytes - windowStartBytes
        windowStart = now
        windowStartBytes = networkBytes
        guard Double(bytes) / elapsed.timeInterval < Double(configuration.lowSpeedLimit) else {
            slowWindows = 0
            return nil
        }
        slowWindows += 1
        return stop(slowWindows > configuration.maxRetries ? .tooSlow(windows: slowWindows) : .stalled)
    }

    /// The consumer went away: the attempt stops.
    mutating func cancel() {
        attempt.abort = .cancelled
    }

    /// The attempt has ended: complete, retry, or fail.
    mutating func attemptEnded(_ end: TransportEnd, response: Response) -> EndAction {
        attempt.finalStatus = response.status
        if case .completed = end, attempt.abort == nil {
            // An empty body: the response is judged now.
            _ = checkResponseOnce(response)
        }
        if let abort = attempt.abort {
            return decide(abortError(abort))
        }
        switch end {
        case .completed:
            if let expected = request.expectedLength, received != expected {
                return .fail(
                    AutoupdateError(
                        .checksumMismatch, "downloading \(url): received \(received) bytes, expected \(expected)"))
            }
            return .complete
        case .aborted:
            return decide(.failed(AutoupdateError(.network, "downloading \(url): the transfer ended without a result"), retryable: true))
        case .failed(let failure):
            return decide(transportError(failure))
        }
    }

    /// The wait before a retry is over (network time now): `nil` to start the next attempt, or
    /// the deadline's error.
    func retryWaitEnded(now: Duration) -> AutoupdateError? {
        now > configuration.deadline ? deadlineError() : nil
    }

    // MARK: Judging a response

    private mutating func stop(_ abort: Abort) -> Abort {
        attempt.abort = attempt.abort ?? abort
        return abort
    }

    private mutating func checkResponseOnce(_ response: @autoclosure () -> Response) -> Abort? {
        guard !attempt.responseChecked else {
            return attempt.abort
        }
        attempt.responseChecked = true
        let response = response()
        attempt.response = response
        if let abort = check(response) {
            return stop(abort)
        }
        return nil
    }

    /// Judges the response when its body starts (or when it ends, for an empty body).
    private mutating func check(_ response: Response) -> Abort? {
        let answered = attempt.headers.validator
        if request.ranges != nil {
            // A multipart body; its parts are checked by the caller, which knows what it asked.
            let type = attempt.headers["content-type"]?.lowercased() ?? ""
            guard response.status == 206, type.hasPrefix("multipart/byteranges") else {
                return (200..<300).contains(response.status)
                    ? .rangeNotHonoured(status: response.status, contentRange: attempt.headers["content-range"])
                    : .unexpectedStatus(response.status)
            }
            return nil
        }
        if let range = request.range {
            return checkRanged(response, range: range, answered: answered)
        }
        switch response.status {
        case 304 where request.conditional != nil && attempt.offset == 0:
            return nil
        case 206:
            guard attempt.sentRange, let range = attempt.headers.contentRange, range.first == attempt.offset,
                totalLength == nil || range.completeLength == nil || range.completeLength == totalLength
            else {
                rangesBroken = true
                return .badContentRange(attempt.headers["content-range"])
            }
            if let validator, !answered.isEmpty, !validator.matches(answered) {
                return .contentChanged
            }
            totalLength = totalLength ?? range.completeLength
        case 200..<300:
            if attempt.offset > 0 {
                // A full body although part of it was delivered: the same representation (the
                // server ignored the range) is fine, its first bytes are skipped; a different one
                // (If-Range did not match) cannot be spliced onto what the consumer already has.
                if let validator, !validator.isEmpty, !validator.matches(answered) {
                    return .contentChanged
                }
                attempt.skip = attempt.offset
            } else {
                validator = answered
            }
            if let length = response.contentLength {
                if let totalLength, totalLength != length {
                    return .contentChanged
                }
                totalLength = length
            }
        default:
            return .unexpectedStatus(response.status)
        }
        if let totalLength {
            if totalLength > cap {
                return .tooLarge(totalLength)
            }
            if let expected = request.expectedLength, totalLength != expected {
                return .lengthMismatch(announced: totalLength)
            }
        }
        return nil
    }

    /// A ranged request: exactly the bytes asked for (from where the last attempt stopped), of a
    /// file of the expected length, of the same representation as before.
    private mutating func checkRanged(_ response: Response, range: ClosedRange<Int64>, answered: HTTPValidator) -> Abort? {
        let header = attempt.headers["content-range"]
        guard response.status == 206 else {
            return (200..<300).contains(response.status)
                ? .rangeNotHonoured(status: response.status, contentRange: header) : .unexpectedStatus(response.status)
        }
        guard let answer = attempt.headers.contentRange, answer.first == range.lowerBound + attempt.offset,
            answer.last == range.upperBound, request.completeLength == nil || answer.completeLength == request.completeLength
        else {
            return .rangeNotHonoured(status: 206, contentRange: header)
        }
        if let validator, !validator.isEmpty, !answered.isEmpty, !validator.matches(answered) {
            return .contentChanged
        }
        if attempt.offset == 0 {
            validator = answered
        }
        totalLength = answer.completeLength
        return nil
    }

    // MARK: Retry or fail

    private enum Failure {
        case cancelled
        case failed(AutoupdateError, retryable: Bool)
    }

    private mutating func decide(_ failure: Failure) -> EndAction {
        guard case .failed(let error, let retryable) = failure else {
            return .cancelled
        }
        // Progress resets the count, unless the attempt stalled: a drip is no progress.
        let stalled = attempt.abort == .stalled
        failuresInARow = received > receivedAtAttemptStart && !stalled ? 1 : failuresInARow + 1
        let maxAttempts = max(1, configuration.maxRetries * 10 + 1)
        guard retryable, failuresInARow <= configuration.maxRetries, attempts < maxAttempts else {
            return .fail(error)
        }
        let delay = exponentialBackoff(
            failure: failuresInARow, base: configuration.retryDelay, cap: configuration.maxRetryDelay, jitter: jitter())
        return .retry(after: delay, because: error)
    }

    private func abortError(_ abort: Abort) -> Failure {
        let window = configuration.lowSpeedWindow
        switch abort {
        case .cancelled:
            return .cancelled
        case .stalled:
            return .failed(
                AutoupdateError(
                    .timeout,
                    "downloading \(url): the server sent fewer than \(configuration.lowSpeedLimit) bytes/s for \(window.seconds) s (stalled after \(received) bytes)"
                ),
                retryable: true)
        case .tooSlow(let windows):
            return .failed(
                AutoupdateError(
                    .timeout,
                    "downloading \(url): the server sent fewer than \(configuration.lowSpeedLimit) bytes/s in \(windows) windows of \(window.seconds) s in a row, over any number of connections (stalled after \(received) bytes)"
                ),
                retryable: false)
        case .deadlineExceeded:
            return .failed(deadlineError(), retryable: false)
        case .tooLarge(let size):
            return .failed(
                AutoupdateError(
                    .sizeLimitExceeded,
                    "downloading \(url): the body is larger than the limit of \(cap) bytes (\(size) bytes or more)"),
                retryable: false)
        case .contentChanged:
            return .failed(
                AutoupdateError(
                    .network, "downloading \(url): the file changed on the server during the download; try again"),
                retryable: false)
        case .badContentRange(let header):
            return .failed(
                AutoupdateError(
                    .network,
                    "downloading \(url): the server answered the resume request at byte \(attempt.offset) with a wrong Content-Range (\(header ?? "none")); restarting from the beginning"
                ),
                retryable: true)
        case .rangeNotHonoured(let status, let header):
            let range =
                request.ranges.map { $0.map { "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",") }
                ?? request.range.map { "\($0.lowerBound + attempt.offset)-\($0.upperBound)" } ?? "?"
            let expected = request.completeLength.map { "/\($0)" } ?? ""
            return .failed(
                AutoupdateError(
                    .rangeNotHonoured,
                    "downloading \(url): the server does not honour Range: asked for bytes \(range)\(expected), it answered HTTP \(status) with Content-Range \(header ?? "none")"
                ),
                retryable: false)
        case .lengthMismatch(let announced):
            return .failed(
                AutoupdateError(
                    .checksumMismatch,
                    "downloading \(url): the server announced \(announced) bytes, expected \(request.expectedLength ?? 0)"),
                retryable: false)
        case .unexpectedStatus(let status):
            return .failed(
                AutoupdateError(
                    .httpStatus, "downloading \(url): unexpected HTTP status \(status)",
                    underlying: HTTPStatusFailure(status: status, url: request.url, retryAfter: nil)),
                retryable: false)
        }
    }

    private func transportError(_ failure: TransportFailure) -> Failure {
        let detail = failure.detail
        let underlying = failure.underlying
        switch failure.kind {
        case .httpStatus(416, _) where request.range != nil || request.ranges != nil:
            let range =
                request.ranges.map { $0.map { "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",") }
                ?? request.range.map { "\($0.lowerBound + attempt.offset)-\($0.upperBound)" } ?? "?"
            return .failed(
                AutoupdateError(
                    .rangeNotHonoured,
                    "downloading \(url): the server has no bytes \(range) (HTTP 416): the file is shorter than its index says",
                    underlying: HTTPStatusFailure(status: 416, url: request.url, retryAfter: nil)),
                retryable: false)
        case .httpStatus(416, _) where attempt.sentRange:
            // Resuming at the end of what the server really has: its Content-Length was a lie.
            let announced = totalLength.map { "announced \($0) bytes" } ?? "announced more bytes"
            return .failed(
                AutoupdateError(
                    .network,
                    "downloading \(url): the server \(announced) but has none after byte \(received) (HTTP 416 on resume); its Content-Length is wrong",
                    underlying: HTTPStatusFailure(status: 416, url: request.url, retryAfter: nil)),
                retryable: false)
        case .httpStatus(let status, let effectiveURL):
            let statusFailure = HTTPStatusFailure(
                status: status, url: effectiveURL ?? request.url, retryAfter: attempt.headers.retryAfter())
            var message = "downloading \(url): the server answered HTTP \(status)"
            if let retryAfter = statusFailure.retryAfter {
                message += " and asked to retry after \(retryAfter.components.seconds) s"
            }
            return .failed(AutoupdateError(.httpStatus, message, underlying: statusFailure), retryable: false)
        case .redirectRefused(let target):
            let shown = target.map { URL(string: $0)?.displayString ?? $0 } ?? "a non-HTTPS URL"
            return .failed(
                AutoupdateError(
                    .network, "downloading \(url): refused to follow a redirect to \(shown): only https is allowed",
                    underlying: underlying), retryable: false)
        case .tooManyRedirects:
            return .failed(
                AutoupdateError(
                    .network, "downloading \(url): more than \(configuration.maxRedirects) redirects", underlying: underlying),
                retryable: false)
        case .fileSizeExceeded where request.range != nil || request.ranges != nil:
            // More than the range announced: the whole file, Range ignored.
            return abortError(.rangeNotHonoured(status: attempt.finalStatus, contentRange: attempt.headers["content-range"]))
        case .fileSizeExceeded:
            return .failed(
                AutoupdateError(
                    .sizeLimitExceeded, "downloading \(url): the server announced more than the limit of \(cap) bytes",
                    underlying: underlying), retryable: false)
        case .timedOut where attempt.networkBytes == 0 && attempt.finalStatus == 0:
            return .failed(
                AutoupdateError(
                    .timeout, "downloading \(url): no connection within \(configuration.connectTimeout.seconds) s (\(detail))",
                    underlying: underlying), retryable: true)
        case .tls(let untrustedPeer):
            var message = "downloading \(url): TLS failed: \(detail)"
            if untrustedPeer {
                message += " (the server's certificate is not trusted or does not match the host; a private CA can be added with caFile)"
            }
            return .failed(AutoupdateError(.tls, message, underlying: underlying), retryable: false)
        case .transient, .timedOut:
            let progress = totalLength.map { "after \(received) of \($0) bytes" } ?? "after \(received) bytes"
            return .failed(
                AutoupdateError(
                    .network, "downloading \(url): the connection failed \(progress): \(detail)", underlying: underlying),
                retryable: true)
        case .other:
            return .failed(AutoupdateError(.network, "downloading \(url): \(detail)", underlying: underlying), retryable: false)
        }
    }

    private func deadlineError() -> AutoupdateError {
        AutoupdateError(
            .timeout,
            "downloading \(url): not finished within the deadline of \(configuration.deadline.seconds) s (\(received) bytes received)")
    }
}

import CAutoupdateCurl
import Foundation
import Logging

/// Everything one transfer needs, fixed when it starts.
struct TransferRequest: Sendable {
    /// An https URL (the ``Downloader`` has upgraded http already).
    let url: URL
    let configuration: DownloadConfiguration
    /// For a conditional request: answered with 304 when the resource still matches.
    let conditional: HTTPValidator?
    /// The exact length the body must have, when the caller knows it.
    let expectedLength: Int64?
    /// The most bytes the body may have.
    let maxBytes: Int64

    /// The URL for logs and messages: no query, no fragment, no credentials.
    var displayURL: String { url.displayString }
}

/// Runs one download on a thread of its own, with libcurl's multi interface.
///
/// Blocking is fine here, because the thread is ours: the write callback waits for the consumer
/// when the buffer is full (backpressure reaches the server through TCP), and `curl_multi_poll`
/// waits for the network until data arrives, a timer is due, or the consumer cancels.
///
/// Attempts: a dropped connection or a stall is retried with exponential backoff, resuming with
/// `Range` + `If-Range`. A 206 must start where asked; a 200 (the server ignored the range, or
/// `If-Range` found a different representation) is accepted only for the same representation,
/// and its first bytes, already delivered, are skipped. The consumer never sees a byte twice.
final class TransferRunner {
    private enum Abort {
        case cancelled
        case stalled
        /// Stalled for more windows in a row than retries allow, across attempts.
        case tooSlow(windows: Int)
        case deadlineExceeded
        case tooLarge(Int64)
        case contentChanged
        case badContentRange(String?)
        case lengthMismatch(announced: Int64)
        case unexpectedStatus(Int)
    }

    /// The state of one HTTP request.
    private struct Attempt {
        /// The first body byte asked for (0, or where a resumed attempt continues).
        var offset: Int64 = 0
        var sentRange = false
        var responseChecked = false
        /// Bytes at the start of a full (200) response that were already delivered.
        var skip: Int64 = 0
        var headers = ResponseHeaders()
        var abort: Abort?
        /// Body bytes off the network in this attempt, skipped ones included.
        var networkBytes: Int64 = 0
    }

    private enum Outcome {
        case completed
        case cancelled
        case failed(AutoupdateError, retryable: Bool)
    }

    /// Whether the last attempt ended in a stall: its trickle of bytes is no progress, so a
    /// drip-feeding server cannot earn itself endless retries.
    private var lastAttemptStalled: Bool {
        if case .stalled = attempt.abort { return true }
        return false
    }

    private let core: TransferCore
    private let request: TransferRequest
    private let logger: Logger
    private let clock = ContinuousClock()
    private let startedAt: ContinuousClock.Instant
    /// Time spent blocked on a slow consumer: excluded from stall detection and the deadline,
    /// which judge the server, not our own disk.
    private var consumerWait: Duration = .zero

    /// Body bytes accepted for the consumer: delivered plus `pending`.
    private var received: Int64 = 0
    /// Small network reads coalesced into chunks of `handOffSize`.
    private var pending: [UInt8] = []
    /// The size of the next chunk: `chunkSize`, doubled while chunks fill in under a millisecond
    /// so that a fast transfer wakes its consumer about once a millisecond rather than for every
    /// `chunkSize` bytes (each wake-up of a waiting consumer costs a thread switch), and halved
    /// again when they take over four. At most half the buffer limit, so that backpressure still
    /// leaves the consumer a chunk to work on while the next one fills.
    private var handOffSize: Int
    private var lastFlush: ContinuousClock.Instant
    private var rate = RateEstimator()
    /// The representation being downloaded, from its first response.
    private var validator: HTTPValidator?
    private var totalLength: Int64?
    /// The server answered a range request wrongly: later attempts restart from zero.
    private var rangesBroken = false
    /// The low-speed floor is measured over the whole download, not per attempt: a server that
    /// drips bytes and closes the connection before a window ends must not get a fresh window
    /// (and a fresh retry) each time. Body bytes off the network in all attempts:
    private var networkBytes: Int64 = 0
    /// The current window's start (network time) and the bytes seen when it started.
    private var windowStart: Duration = .zero
    private var windowStartBytes: Int64 = 0
    /// Windows in a row below the floor.
    private var slowWindows = 0
    private var attempt = Attempt()
    private var easy: CurlEasy?

    private var cap: Int64 { request.expectedLength ?? request.maxBytes }
    private var networkTime: Duration { clock.now - startedAt - consumerWait }

    private init(core: TransferCore, request: TransferRequest, logger: Logger) {
        self.core = core
        self.request = request
        self.logger = logger
        startedAt = clock.now
        lastFlush = startedAt
        handOffSize = request.configuration.smallestChunk
    }

    /// Starts the transfer on a new thread.
    ///
    /// `onExit` runs on that thread after every handle is released and before the consumer can
    /// see the end of the stream.
    static func start(core: TransferCore, request: TransferRequest, logger: Logger, onExit: @escaping @Sendable () -> Void) {
        BackgroundThread.start(name: "autoupdate.download") {
            let runner = TransferRunner(core: core, request: request, logger: logger)
            let failure: (any Error)?
            let head: ResponseHead?
            do {
                try runner.run()
                (failure, head) = (nil, runner.finalHead)
            } catch {
                (failure, head) = (error, nil)
            }
            onExit()
            core.finish(failure: failure, head: head)
        }
    }

    /// The status of the last attempt's response.
    private var lastStatus: Int?

    /// The final response, for ``Downloader/fetch(_:validator:maxBytes:)``.
    private var finalHead: ResponseHead? {
        ResponseHead(status: lastStatus ?? 0, validator: attempt.headers.validator)
    }

    // MARK: Attempts

    private func run() throws {
        let multi = try CurlMulti(wakeup: core.curlWakeup)
        var failuresInARow = 0
        var attempts = 0
        let maxAttempts = max(1, request.configuration.maxRetries * 10 + 1)
        while true {
            let receivedBefore = received
            attempts += 1
            switch performAttempt(multi) {
            case .completed:
                try checkCompleteLength()
                guard flush() else { throw CancellationError() }
                return
            case .cancelled:
                throw CancellationError()
            case .failed(let error, let retryable):
                failuresInARow = received > receivedBefore && !lastAttemptStalled ? 1 : failuresInARow + 1
                guard retryable, failuresInARow <= request.configuration.maxRetries, attempts < maxAttempts else {
                    throw error
                }
                let delay = exponentialBackoff(
                    failure: failuresInARow, base: request.configuration.retryDelay, cap: request.configuration.maxRetryDelay)
                logger.info("download interrupted; resuming", metadata: [
                    "download.url": "\(request.displayURL)", "download.bytes": "\(received)",
                    "download.retry": "\(failuresInARow)", "download.delay": "\(delay)", "error": "\(error.message)",
                ])
                guard core.waitBeforeRetry(delay) else { throw CancellationError() }
                if networkTime > request.configuration.deadline {
                    throw deadlineError()
                }
            }
        }
    }

    private func performAttempt(_ multi: CurlMulti) -> Outcome {
        attempt = Attempt(offset: received)
        let easy: CurlEasy
        do {
            easy = try makeHandle()
            try multi.add(easy)
        } catch {
            return .failed(error as? AutoupdateError ?? AutoupdateError(.network, "\(error)"), retryable: false)
        }
        self.easy = easy
        defer {
            multi.remove(easy)
            self.easy = nil
        }
        // `self` is the callbacks' context: it outlives `easy`, which is removed and released above.
        var code: CurlCode?
        while true {
            let running = multi.perform()
            if attempt.abort != nil {
                break
            }
            if core.isCancelled {
                attempt.abort = .cancelled
                break
            }
            if let timeout = checkTimers() {
                attempt.abort = timeout
                break
            }
            if !running {
                code = multi.completionCode()
                break
            }
            // A slow server's bytes should not sit here for long: the consumer shows progress.
            if !pending.isEmpty, clock.now - lastFlush >= .milliseconds(20), !flush() {
                attempt.abort = .cancelled
                break
            }
            multi.poll(timeoutMilliseconds: 100)
        }
        lastStatus = easy.responseCode
        return classify(code, easy: easy)
    }

    private func checkTimers() -> Abort? {
        let now = networkTime
        if now > request.configuration.deadline {
            return .deadlineExceeded
        }
        let window = request.configuration.lowSpeedWindow
        let elapsed = now - windowStart
        guard elapsed >= window else {
            return nil
        }
        let bytes = networkBytes - windowStartBytes
        windowStart = now
        windowStartBytes = networkBytes
        guard Double(bytes) / elapsed.timeInterval < Double(request.configuration.lowSpeedLimit) else {
            slowWindows = 0
            return nil
        }
        slowWindows += 1
        return slowWindows > request.configuration.maxRetries ? .tooSlow(windows: slowWindows) : .stalled
    }

    // MARK: The handle

    /// Every libcurl option in one place: the hardening first, then this attempt's request.
    private func makeHandle() throws -> CurlEasy {
        let easy = try CurlEasy()
        let configuration = request.configuration
        try easy.set(CURLOPT_URL, request.url.absoluteString)
        /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_PROTOCOLS_STR.html
        try easy.set(CURLOPT_PROTOCOLS_STR, "https")
        /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_REDIR_PROTOCOLS_STR.html
        try easy.set(CURLOPT_REDIR_PROTOCOLS_STR, "https")
        /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_FOLLOWLOCATION.html
        try easy.set(CURLOPT_FOLLOWLOCATION, 1)
        /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_MAXREDIRS.html
        try easy.set(CURLOPT_MAXREDIRS, configuration.maxRedirects)
        /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_SSL_VERIFYPEER.html
        try easy.set(CURLOPT_SSL_VERIFYPEER, 1)
        /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_SSL_VERIFYHOST.html
        try easy.set(CURLOPT_SSL_VERIFYHOST, 2)
        /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_SSLVERSION.html
        try easy.set(CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2)
        if let caFile = configuration.caFile {
            // CAINFO replaces the default bundle; keeping the default CA folder as CAPATH makes
            // the file an addition to the system's trust anchors, not a replacement.
            /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_CAINFO.html
            try easy.set(CURLOPT_CAINFO, caFile)
            /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_CAPATH.html
            try easy.set(CURLOPT_CAPATH, easy.defaultCAPath ?? "/etc/ssl/certs")
        }
        /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_CONNECTTIMEOUT_MS.html
        try easy.set(CURLOPT_CONNECTTIMEOUT_MS, Int(configuration.connectTimeout.milliseconds))
        /// Threads: no signals for DNS timeouts. - SeeAlso: https://curl.se/libcurl/c/CURLOPT_NOSIGNAL.html
        try easy.set(CURLOPT_NOSIGNAL, 1)
        /// HTTP errors fail the transfer before any body is delivered.
        /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_FAILONERROR.html
        try easy.set(CURLOPT_FAILONERROR, 1)
        /// A first line of defence; our own count enforces the exact cap.
        /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_MAXFILESIZE_LARGE.html
        try easy.set(CURLOPT_MAXFILESIZE_LARGE, offset: cap)
        /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_USERAGENT.html
        try easy.set(CURLOPT_USERAGENT, AutoupdateInfo.userAgent)
        /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_TCP_KEEPALIVE.html
        try easy.set(CURLOPT_TCP_KEEPALIVE, 1)
        /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_BUFFERSIZE.html
        try easy.set(CURLOPT_BUFFERSIZE, 128 << 10)

        let context = UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque())
        try easy.set(CURLOPT_WRITEDATA, pointer: context)
        try easy.set(CURLOPT_WRITEFUNCTION, callback: { data, size, count, context in
            guard let data, let context else { return 0 }
            let runner = Unmanaged<TransferRunner>.fromOpaque(context).takeUnretainedValue()
            return runner.receiveBody(UnsafeRawBufferPointer(start: data, count: size * count))
        })
        try easy.set(CURLOPT_HEADERDATA, pointer: context)
        try easy.set(CURLOPT_HEADERFUNCTION, callback: { data, size, count, context in
            guard let data, let context else { return 0 }
            let runner = Unmanaged<TransferRunner>.fromOpaque(context).takeUnretainedValue()
            let bytes = UnsafeRawBufferPointer(start: data, count: size * count)
            runner.attempt.headers.take(line: String(decoding: bytes, as: UTF8.self))
            return size * count
        })

        var headers: [String] = []
        if received > 0 {
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
        try easy.setHeaders(headers)
        return easy
    }

    // MARK: Callbacks (on this thread, inside `curl_multi_perform`)

    private func receiveBody(_ data: UnsafeRawBufferPointer) -> Int {
        attempt.networkBytes += Int64(data.count)
        networkBytes += Int64(data.count)
        if !attempt.responseChecked {
            attempt.responseChecked = true
            if let abort = checkResponse() {
                attempt.abort = abort
                return 0
            }
        }
        var body = data[...]
        if attempt.skip > 0 {
            let skipped = Int(min(attempt.skip, Int64(body.count)))
            attempt.skip -= Int64(skipped)
            body = body.dropFirst(skipped)
        }
        guard !body.isEmpty else {
            return data.count
        }
        guard received + Int64(body.count) <= cap else {
            attempt.abort = .tooLarge(received + Int64(body.count))
            return 0
        }
        // Cut at the hand-off size, so that no chunk exceeds it.
        while !body.isEmpty {
            let piece = body.prefix(handOffSize - pending.count)
            pending.append(contentsOf: piece)
            received += Int64(piece.count)
            body = body.dropFirst(piece.count)
            if pending.count >= handOffSize, !flush() {
                attempt.abort = .cancelled
                return 0
            }
        }
        return data.count
    }

    /// Judges the response when its body starts (or when it ends, for an empty body).
    private func checkResponse() -> Abort? {
        guard let easy else { return .cancelled }
        let status = easy.responseCode
        let answered = attempt.headers.validator
        switch status {
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
            if let length = easy.contentLength {
                if let totalLength, totalLength != length {
                    return .contentChanged
                }
                totalLength = length
            }
        default:
            return .unexpectedStatus(status)
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

    // MARK: Delivery

    /// Hands what is pending to the consumer; `false` when the consumer is gone.
    private func flush() -> Bool {
        guard !pending.isEmpty else {
            return true
        }
        let now = clock.now
        rate.add(bytes: pending.count, at: now)
        let chunk = DownloadChunk(
            bytes: pending,
            progress: DownloadProgress(receivedBytes: received, totalBytes: totalLength, bytesPerSecond: rate.bytesPerSecond)
        )
        let configuration = request.configuration
        let filledIn = now - lastFlush
        if filledIn < .milliseconds(1) {
            handOffSize = min(configuration.largestChunk, handOffSize * 2)
        } else if filledIn > .milliseconds(4) {
            handOffSize = max(configuration.smallestChunk, handOffSize / 2)
        }
        pending = []
        pending.reserveCapacity(handOffSize)
        lastFlush = now
        let delivered = core.deliver(chunk)
        consumerWait += clock.now - now
        return delivered
    }

    private func checkCompleteLength() throws {
        if let expected = request.expectedLength, received != expected {
            throw AutoupdateError(
                .checksumMismatch,
                "downloading \(request.displayURL): received \(received) bytes, expected \(expected)")
        }
    }

    // MARK: Errors

    private func classify(_ code: CurlCode?, easy: CurlEasy) -> Outcome {
        let url = request.displayURL
        if let abort = attempt.abort {
            switch abort {
            case .cancelled:
                return .cancelled
            case .stalled:
                let window = request.configuration.lowSpeedWindow
                return .failed(AutoupdateError(
                    .timeout,
                    "downloading \(url): the server sent fewer than \(request.configuration.lowSpeedLimit) bytes/s for \(window.seconds) s (stalled after \(received) bytes)"),
                    retryable: true)
            case .tooSlow(let windows):
                let window = request.configuration.lowSpeedWindow
                return .failed(AutoupdateError(
                    .timeout,
                    "downloading \(url): the server sent fewer than \(request.configuration.lowSpeedLimit) bytes/s in \(windows) windows of \(window.seconds) s in a row, over any number of connections (stalled after \(received) bytes)"),
                    retryable: false)
            case .deadlineExceeded:
                return .failed(deadlineError(), retryable: false)
            case .tooLarge(let size):
                return .failed(AutoupdateError(
                    .sizeLimitExceeded,
                    "downloading \(url): the body is larger than the limit of \(cap) bytes (\(size) bytes or more)"),
                    retryable: false)
            case .contentChanged:
                return .failed(AutoupdateError(
                    .network,
                    "downloading \(url): the file changed on the server during the download; try again"),
                    retryable: false)
            case .badContentRange(let header):
                return .failed(AutoupdateError(
                    .network,
                    "downloading \(url): the server answered the resume request at byte \(attempt.offset) with a wrong Content-Range (\(header ?? "none")); restarting from the beginning"),
                    retryable: true)
            case .lengthMismatch(let announced):
                return .failed(AutoupdateError(
                    .checksumMismatch,
                    "downloading \(url): the server announced \(announced) bytes, expected \(request.expectedLength ?? 0)"),
                    retryable: false)
            case .unexpectedStatus(let status):
                return .failed(AutoupdateError(
                    .httpStatus, "downloading \(url): unexpected HTTP status \(status)",
                    underlying: HTTPStatusFailure(status: status, url: request.url, retryAfter: nil)),
                    retryable: false)
            }
        }
        guard let code else {
            return .failed(AutoupdateError(.network, "downloading \(url): the transfer ended without a result"), retryable: true)
        }
        if code == .ok {
            if !attempt.responseChecked {
                attempt.responseChecked = true
                if let abort = checkResponse() {
                    attempt.abort = abort
                    return classify(nil, easy: easy)
                }
            }
            return .completed
        }
        let detail = easy.errorMessage ?? code.description
        switch code {
        case .httpReturnedError where easy.responseCode == 416 && attempt.sentRange:
            // Resuming at the end of what the server really has: its Content-Length was a lie.
            let announced = totalLength.map { "announced \($0) bytes" } ?? "announced more bytes"
            return .failed(AutoupdateError(
                .network,
                "downloading \(url): the server \(announced) but has none after byte \(received) (HTTP 416 on resume); its Content-Length is wrong",
                underlying: HTTPStatusFailure(status: 416, url: request.url, retryAfter: nil)),
                retryable: false)
        case .httpReturnedError:
            let status = easy.responseCode
            let failure = HTTPStatusFailure(
                status: status, url: easy.effectiveURL.flatMap(URL.init(string:)) ?? request.url,
                retryAfter: attempt.headers.retryAfter())
            var message = "downloading \(url): the server answered HTTP \(status)"
            if let retryAfter = failure.retryAfter {
                message += " and asked to retry after \(retryAfter.components.seconds) s"
            }
            return .failed(AutoupdateError(.httpStatus, message, underlying: failure), retryable: false)
        case .unsupportedProtocol:
            let target = easy.redirectURL.map { URL(string: $0)?.displayString ?? $0 } ?? "a non-HTTPS URL"
            return .failed(AutoupdateError(
                .network, "downloading \(url): refused to follow a redirect to \(target): only https is allowed",
                underlying: code), retryable: false)
        case .tooManyRedirects:
            return .failed(AutoupdateError(
                .network, "downloading \(url): more than \(request.configuration.maxRedirects) redirects",
                underlying: code), retryable: false)
        case .fileSizeExceeded:
            return .failed(AutoupdateError(
                .sizeLimitExceeded, "downloading \(url): the server announced more than the limit of \(cap) bytes",
                underlying: code), retryable: false)
        case .operationTimedOut where attempt.networkBytes == 0 && easy.responseCode == 0:
            return .failed(AutoupdateError(
                .timeout,
                "downloading \(url): no connection within \(request.configuration.connectTimeout.seconds) s (\(detail))",
                underlying: code), retryable: true)
        case _ where code.isTLSFailure:
            var message = "downloading \(url): TLS failed: \(detail)"
            if code == .peerFailedVerification {
                message += " (the server's certificate is not trusted or does not match the host; a private CA can be added with caFile)"
            }
            return .failed(AutoupdateError(.tls, message, underlying: code), retryable: false)
        case _ where code.isTransient:
            let progress = totalLength.map { "after \(received) of \($0) bytes" } ?? "after \(received) bytes"
            return .failed(AutoupdateError(
                .network, "downloading \(url): the connection failed \(progress): \(detail)", underlying: code),
                retryable: true)
        default:
            return .failed(AutoupdateError(.network, "downloading \(url): \(detail)", underlying: code), retryable: false)
        }
    }

    private func deadlineError() -> AutoupdateError {
        AutoupdateError(
            .timeout,
            "downloading \(request.displayURL): not finished within the deadline of \(request.configuration.deadline.seconds) s (\(received) bytes received)")
    }
}

@available(*, unavailable)
extension TransferRunner: Sendable {}

/// A transfer rate smoothed over about a second (exponential moving average).
struct RateEstimator {
    private(set) var bytesPerSecond: Double = 0
    private var last: ContinuousClock.Instant?

    mutating func add(bytes: Int, at now: ContinuousClock.Instant) {
        defer { last = now }
        guard let last else {
            return
        }
        let elapsed = now - last
        let seconds = max(elapsed.timeInterval, 1e-6)
        let instant = Double(bytes) / seconds
        let weight = 1 - exp(-seconds)
        bytesPerSecond = bytesPerSecond == 0 ? instant : bytesPerSecond + weight * (instant - bytesPerSecond)
    }
}

extension URL {
    /// The URL for logs and messages: scheme, host, port and path only (no credentials, query
    /// or fragment, which may hold secrets).
    var displayString: String {
        guard var components = URLComponents(url: self, resolvingAgainstBaseURL: false) else {
            return "<invalid URL>"
        }
        components.user = nil
        components.password = nil
        components.query = nil
        components.fragment = nil
        return components.string ?? "<invalid URL>"
    }
}

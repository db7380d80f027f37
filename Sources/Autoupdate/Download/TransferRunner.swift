import CAutoupdateCurl
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
    /// Only these bytes of the resource (an HTTP Range request), which must be a file of
    /// `completeLength` bytes when that is given.
    var range: ClosedRange<Int64>? = nil
    /// Several ranges in one request, answered as a `multipart/byteranges` body (which the
    /// caller parses); a server that answers otherwise fails it with `.rangeNotHonoured`.
    var ranges: [ClosedRange<Int64>]? = nil
    var completeLength: Int64? = nil
    /// The downloader's connection cache; kept alive by every transfer that uses it.
    var share: CurlShare? = nil

    /// The URL for logs and messages: no query, no fragment, no credentials.
    var displayURL: String { url.displayString }
}

/// Runs one download on a thread of its own, with libcurl's multi interface: the owner of the
/// transport, which decides nothing. Every rule (resume, retry, ranges, lengths, stalls,
/// deadline) is ``DownloadStateMachine``'s; this type feeds it what libcurl reports and does
/// what it answers.
///
/// Blocking is fine here, because the thread is ours: delivery waits for the consumer when the
/// buffer is full (backpressure reaches the server through TCP), and `curl_multi_poll` waits for
/// the network until data arrives, a timer is due, or the consumer cancels.
final class TransferRunner {
    private let core: TransferCore
    private let request: TransferRequest
    private let logger: Logger
    private let clock = ContinuousClock()
    private let startedAt: ContinuousClock.Instant
    private var machine: DownloadStateMachine
    /// Time spent blocked on a slow consumer: excluded from the machine's clock, which judges
    /// the server, not our own disk.
    private var consumerWait: Duration = .zero

    /// Small network reads coalesced into chunks of `handOffSize`.
    private var pending: [UInt8] = []
    /// The size of the next chunk: `chunkSize`, doubled while chunks fill in under a millisecond
    /// so that a fast transfer wakes its consumer about once a millisecond rather than for every
    /// `chunkSize` bytes (each wake-up of a waiting consumer costs a thread switch), and halved
    /// again when they take over four. At most half the buffer limit, so that backpressure still
    /// leaves the consumer a chunk to work on while the next one fills.
    private var handOffSize: Int
    /// The arrays of the chunks handed on, oldest first, kept for reuse: once the consumer has
    /// let a chunk go, its array is ours alone again and the next chunk fills its memory, already
    /// mapped and warm, instead of a new allocation (for chunks this large, an `mmap` whose pages
    /// fault in one by one). A chunk still held is never touched: taking it back for writing
    /// copies nothing but gets a fresh buffer (arrays are values), so the chunk stays valid.
    private var handedOn: [[UInt8]] = []
    /// How many arrays ``handedOn`` keeps: the chunks the buffer holds, one the consumer works on, and one to spare.
    private let recycledArrays: Int
    private var lastFlush: ContinuousClock.Instant
    /// Bytes handed to the consumer so far.
    private var delivered: Int64 = 0
    private var rate = RateEstimator()
    private var easy: CurlEasy?
    /// Under `maxBytesPerSecond`: body bytes received since the cap's clock started.
    private var throttled: (bytes: Int64, since: ContinuousClock.Instant)?

    private var networkTime: Duration { clock.now - startedAt - consumerWait }

    private init(core: TransferCore, request: TransferRequest, logger: Logger) {
        self.core = core
        self.request = request
        self.logger = logger
        machine = DownloadStateMachine(request: request)
        startedAt = clock.now
        lastFlush = startedAt
        handOffSize = request.configuration.smallestChunk
        recycledArrays = request.configuration.bufferLimit / request.configuration.largestChunk + 2
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
                (failure, head) = (nil, runner.machine.finalHead)
            } catch {
                (failure, head) = (error, nil)
            }
            onExit()
            core.finish(failure: failure, head: head)
        }
    }

    // MARK: Attempts

    private func run() throws {
        let multi = try CurlMulti(wakeup: core.curlWakeup)
        while true {
            let attempt = machine.startAttempt()
            let (end, response) = performAttempt(multi, attempt)
            switch machine.attemptEnded(end, response: response) {
            case .complete:
                guard flush() else { throw CancellationError() }
                return
            case .cancelled:
                throw CancellationError()
            case .fail(let error):
                // What was accepted still reaches the consumer before the error: a caller that
                // keeps the bytes (a differential update's pieces) resumes after them later.
                _ = flush()
                throw error
            case .retry(let delay, let error):
                logger.info(
                    "download interrupted; resuming",
                    metadata: [
                        "download.url": "\(request.displayURL)", "download.bytes": "\(machine.received)",
                        "download.delay": "\(delay)", "error": "\(error.message)",
                    ])
                guard core.waitBeforeRetry(delay) else { throw CancellationError() }
                if let error = machine.retryWaitEnded(now: networkTime) {
                    throw error
                }
            }
        }
    }

    private func performAttempt(
        _ multi: CurlMulti, _ attempt: DownloadStateMachine.AttemptRequest
    ) -> (DownloadStateMachine.TransportEnd, DownloadStateMachine.Response) {
        let easy: CurlEasy
        do {
            easy = try makeHandle(attempt)
            try multi.add(easy)
        } catch {
            let detail = (error as? AutoupdateError)?.message ?? "\(error)"
            return (.failed(.init(kind: .other, detail: detail, underlying: error)), .init(status: 0))
        }
        self.easy = easy
        defer {
            multi.remove(easy)
            self.easy = nil
        }
        // `self` is the callbacks' context: it outlives `easy`, which is removed and released above.
        var end = DownloadStateMachine.TransportEnd.aborted
        while true {
            let running = multi.perform()
            if machine.abort != nil {
                break
            }
            if core.isCancelled {
                machine.cancel()
                break
            }
            if machine.tick(now: networkTime) != nil {
                break
            }
            if !running {
                end = multi.completionCode().map { classify($0, easy: easy) } ?? .aborted
                break
            }
            // A slow server's bytes should not sit here for long: the consumer shows progress.
            if !pending.isEmpty, clock.now - lastFlush >= .milliseconds(20), !flush() {
                machine.cancel()
                break
            }
            multi.poll(timeoutMilliseconds: 100)
        }
        return (end, response(easy))
    }

    private func response(_ easy: CurlEasy) -> DownloadStateMachine.Response {
        DownloadStateMachine.Response(status: easy.responseCode, contentLength: easy.contentLength)
    }

    // MARK: The handle

    /// Every libcurl option in one place: the hardening first, then this attempt's request.
    private func makeHandle(_ attempt: DownloadStateMachine.AttemptRequest) throws -> CurlEasy {
        let easy = try CurlEasy()
        if let share = request.share {
            /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_SHARE.html
            try easy.use(share)
        }
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
            // An https proxy is verified against the same anchors.
            /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_PROXY_CAINFO.html
            try easy.set(CURLOPT_PROXY_CAINFO, caFile)
            /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_PROXY_CAPATH.html
            try easy.set(CURLOPT_PROXY_CAPATH, easy.defaultCAPath ?? "/etc/ssl/certs")
        }
        if let proxy = configuration.proxy {
            /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_PROXY.html
            try easy.set(CURLOPT_PROXY, proxy)
            if let credentials = configuration.proxyCredentials {
                /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_PROXYUSERPWD.html
                try easy.set(CURLOPT_PROXYUSERPWD, credentials)
            }
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
        try easy.set(CURLOPT_MAXFILESIZE_LARGE, offset: machine.cap)
        /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_USERAGENT.html
        try easy.set(CURLOPT_USERAGENT, AutoupdateInfo.userAgent)
        /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_TCP_KEEPALIVE.html
        try easy.set(CURLOPT_TCP_KEEPALIVE, 1)
        // Under a rate cap, reads of an eighth of a second's bytes at most, so that the cap
        // (``throttle(received:)``) paces smoothly.
        let readSize = configuration.maxBytesPerSecond.map { Int(min(128 << 10, max(4096, $0 / 8))) } ?? 128 << 10
        /// - SeeAlso: https://curl.se/libcurl/c/CURLOPT_BUFFERSIZE.html
        try easy.set(CURLOPT_BUFFERSIZE, readSize)

        let context = UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque())
        try easy.set(CURLOPT_WRITEDATA, pointer: context)
        try easy.set(
            CURLOPT_WRITEFUNCTION,
            callback: { data, size, count, context in
                guard let data, let context else { return 0 }
                let runner = Unmanaged<TransferRunner>.fromOpaque(context).takeUnretainedValue()
                return runner.receiveBody(UnsafeRawBufferPointer(start: data, count: size * count))
            })
        try easy.set(CURLOPT_HEADERDATA, pointer: context)
        try easy.set(
            CURLOPT_HEADERFUNCTION,
            callback: { data, size, count, context in
                guard let data, let context else { return 0 }
                let runner = Unmanaged<TransferRunner>.fromOpaque(context).takeUnretainedValue()
                let bytes = UnsafeRawBufferPointer(start: data, count: size * count)
                runner.machine.headerLine(String(decoding: bytes, as: UTF8.self))
                return size * count
            })

        try easy.setHeaders(attempt.headers)
        return easy
    }

    // MARK: Callbacks (on this thread, inside `curl_multi_perform`)

    private func receiveBody(_ data: UnsafeRawBufferPointer) -> Int {
        guard let easy else { return 0 }
        throttle(received: data.count)
        let skip: Int
        switch machine.bodyReceived(data.count, response: response(easy)) {
        case .abort:
            return 0
        case .deliver(let count):
            skip = count
        }
        var body = data[skip...]
        // Cut at the hand-off size, so that no chunk exceeds it.
        while !body.isEmpty {
            let piece = body.prefix(handOffSize - pending.count)
            if pending.capacity == 0 {
                pending = nextArray()
            }
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: piece))
            body = body.dropFirst(piece.count)
            if pending.count >= handOffSize, !flush() {
                machine.cancel()
                return 0
            }
        }
        return data.count
    }

    /// `--max-rate`: once the bytes received are ahead of the cap's schedule, this thread (the
    /// transfer's own) waits until they are not; meanwhile TCP's window holds the server back.
    /// libcurl's own cap (`CURLOPT_MAX_RECV_SPEED_LARGE`) let a loopback transfer through
    /// unthrottled here: one `curl_multi_perform` read everything the socket and TLS had buffered.
    /// The wait counts as the consumer's, not the server's (the stall rules judge the server).
    private func throttle(received count: Int) {
        guard let limit = request.configuration.maxBytesPerSecond, limit > 0 else { return }
        let now = clock.now
        var state = throttled ?? (0, now)
        state.bytes += Int64(count)
        throttled = state
        let due = state.since + .nanoseconds(state.bytes * 1_000_000_000 / limit)
        while clock.now < due, !core.isCancelled {
            let started = clock.now
            let remaining = due - started
            let micros = min(50_000, remaining.components.seconds * 1_000_000 + remaining.components.attoseconds / 1_000_000_000_000)
            usleep(useconds_t(max(1, micros)))
            consumerWait += clock.now - started
        }
    }

    // MARK: Delivery

    /// Hands what is pending to the consumer; `false` when the consumer is gone.
    private func flush() -> Bool {
        guard !pending.isEmpty else {
            return true
        }
        let now = clock.now
        rate.add(bytes: pending.count, at: now)
        delivered += Int64(pending.count)
        let chunk = DownloadChunk(
            bytes: pending,
            progress: DownloadProgress(receivedBytes: delivered, totalBytes: machine.totalLength, bytesPerSecond: rate.bytesPerSecond)
        )
        let configuration = request.configuration
        let filledIn = now - lastFlush
        if filledIn < .milliseconds(1) {
            handOffSize = min(configuration.largestChunk, handOffSize * 2)
        } else if filledIn > .milliseconds(4) {
            handOffSize = max(configuration.smallestChunk, handOffSize / 2)
        }
        handedOn.append(pending)
        pending = []
        lastFlush = now
        let accepted = core.deliver(chunk)
        consumerWait += clock.now - now
        return accepted
    }

    /// An empty array for the next chunk: the oldest one handed on once enough are kept.
    private func nextArray() -> [UInt8] {
        var array: [UInt8] = []
        if handedOn.count >= recycledArrays {
            array = handedOn.removeFirst()
            // Keeps the memory when the consumer has let the chunk go; else a new buffer.
            array.removeAll(keepingCapacity: true)
        }
        array.reserveCapacity(handOffSize)
        return array
    }

    // MARK: Transport failures

    /// What libcurl's code means, for the machine to judge.
    private func classify(_ code: CurlCode, easy: CurlEasy) -> DownloadStateMachine.TransportEnd {
        guard code != .ok else {
            return .completed
        }
        let tunnel = easy.proxyConnectCode
        if tunnel >= 300 {
            // The proxy refused the tunnel: the server was never reached.
            let hint = tunnel == 407 ? " (it wants credentials: user:password@ in the proxy's URL, or --proxy-user-file)" : ""
            return .failed(
                .init(kind: .other, detail: "the proxy refused to connect to the server: HTTP \(tunnel)\(hint)", underlying: code))
        }
        let kind: DownloadStateMachine.TransportFailure.Kind =
            switch code {
            case .httpReturnedError: .httpStatus(easy.responseCode, effectiveURL: easy.effectiveURL.flatMap(URL.init(string:)))
            case .unsupportedProtocol: .redirectRefused(target: easy.redirectURL)
            case .tooManyRedirects: .tooManyRedirects
            case .fileSizeExceeded: .fileSizeExceeded
            case .operationTimedOut: .timedOut
            case _ where code.isTLSFailure: .tls(untrustedPeer: code == .peerFailedVerification)
            case _ where code.isTransient: .transient
            default: .other
            }
        return .failed(.init(kind: kind, detail: easy.errorMessage ?? code.description, underlying: code))
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

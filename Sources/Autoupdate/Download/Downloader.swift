#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif
public import Logging

/// Downloads over HTTPS with libcurl: streaming, resumable, bounded, cancellable.
///
/// Each download runs on a thread of its own and is handed to the caller as a
/// ``DownloadStream`` with backpressure. Transient failures (a dropped connection, a stall) are
/// retried with exponential backoff and resumed with `Range` + `If-Range`; the caller never sees
/// duplicated or missing bytes.
///
/// ```swift
/// let downloader = Downloader(configuration: .init(caFile: "ca.pem"))
/// for try await chunk in downloader.bytes(from: archiveURL) { … }
/// if case .modified(let body, let validator) = try await downloader.fetch(versionURL, validator: cached) { … }
/// ```
///
/// ### Security
/// Only HTTPS is spoken: an `http` URL is upgraded to `https`, any other scheme is refused, and a
/// redirect to anything but HTTPS fails the download. Certificates and host names are always
/// verified. Bodies are capped (``DownloadConfiguration/maxBytes``, or an expected length), and a
/// server that stalls, drips or never finishes fails within ``DownloadConfiguration/lowSpeedWindow``
/// or ``DownloadConfiguration/deadline``. Out of scope: the authenticity of the bytes, which the
/// signature check establishes.
public final class Downloader: Sendable {
    /// The configuration every download of this downloader uses.
    public let configuration: DownloadConfiguration
    private let logger: Logger
    private let liveTransfers = TransferCounter()
    /// One connection cache for all of this downloader's transfers.
    private let share = CurlShare()

    /// Creates a downloader.
    ///
    /// - Parameters:
    ///   - configuration: Trust, timeouts, caps and retries.
    ///   - logger: Where transfer events are logged (retries at `info`, details at `debug`).
    public init(configuration: DownloadConfiguration = DownloadConfiguration(), logger: Logger = Logger(label: "autoupdate.download")) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Transfers that have started and whose threads have not yet released their handles.
    public var activeTransferCount: Int {
        liveTransfers.value
    }

    /// Streams the body of `url`.
    ///
    /// - Parameters:
    ///   - url: An `https` URL; `http` is upgraded to `https`.
    ///   - expectedLength: The body's exact length, when known: a longer or shorter body fails.
    ///     Without it, the body may have at most ``DownloadConfiguration/maxBytes`` bytes.
    /// - Returns: The body, chunk by chunk. Nothing is sent before iteration starts.
    ///   Iterating throws ``AutoupdateError`` (``AutoupdateError/Code/network``, `.tls`,
    ///   `.httpStatus`, `.timeout`, `.sizeLimitExceeded`, `.invalidURL`) when the download fails.
    public func bytes(from url: URL, expectedLength: Int64? = nil) -> DownloadStream {
        let maxBytes = expectedLength ?? configuration.maxBytes
        return stream(url: url, conditional: nil, expectedLength: expectedLength, maxBytes: maxBytes)
    }

    /// Streams bytes `range` of `url`, with an HTTP Range request (resumed, like any download,
    /// from where a dropped connection stopped).
    ///
    /// The server must answer `206` with exactly those bytes, of a file of `completeLength` bytes
    /// when that is given; a server that ignores Range (`200`), answers another range or
    /// another length fails the stream at once (``AutoupdateError/Code/network``, "does not
    /// honour Range"), without a retry: the caller falls back to downloading the whole file.
    ///
    /// - Parameters:
    ///   - url: An `https` URL; `http` is upgraded to `https`.
    ///   - range: The first and last byte wanted.
    ///   - completeLength: The file's length, when known (from a release index).
    public func bytes(from url: URL, range: ClosedRange<Int64>, completeLength: Int64? = nil) -> DownloadStream {
        let length = range.upperBound - range.lowerBound + 1
        return stream(url: url, conditional: nil, expectedLength: length, maxBytes: length, range: range, completeLength: completeLength)
    }

    /// Fetches a small resource, conditionally: polling with the validator of the last answer
    /// costs the server a `304 Not Modified` when nothing changed.
    ///
    /// - Parameters:
    ///   - url: An `https` URL; `http` is upgraded to `https`.
    ///   - validator: The validator returned by the previous fetch, or `nil` for an unconditional one.
    ///   - maxBytes: The largest body accepted (default 1 MiB).
    /// - Returns: ``FetchResult/notModified``, or the body with its validator.
    /// - Throws: ``AutoupdateError`` as for ``bytes(from:expectedLength:)``.
    public func fetch(_ url: URL, validator: HTTPValidator? = nil, maxBytes: Int64 = 1 << 20) async throws -> FetchResult {
        let core = Locked<TransferCore?>(nil)
        let stream = stream(url: url, conditional: validator, expectedLength: nil, maxBytes: maxBytes) { started in
            core.withLock { $0 = started }
        }
        var body: [UInt8] = []
        for try await chunk in stream {
            body += chunk.bytes
        }
        let head = core.withLock { $0?.head }
        if head?.status == 304 {
            return .notModified
        }
        let answered = head?.validator
        return .modified(body: body, validator: answered?.isEmpty == false ? answered : nil)
    }

    /// Streams the raw `multipart/byteranges` body that answers one request for several ranges
    /// of `url` (parse it with ``MultipartByteranges``; check each part against what was asked).
    ///
    /// Not resumed or retried: a failure ends the stream, and the caller keeps the parts it has.
    /// A server that answers with one range or the whole file (`200`) fails it with
    /// ``AutoupdateError/Code/rangeNotHonoured`` before any body byte is delivered.
    ///
    /// - Parameters:
    ///   - url: The file.
    ///   - ranges: The first and last byte of each range wanted (at least two, ascending, apart).
    func bytes(from url: URL, ranges: [ClosedRange<Int64>]) -> DownloadStream {
        let data = ranges.reduce(Int64(0)) { $0 + $1.upperBound - $1.lowerBound + 1 }
        // Each part's headers and delimiter are well under 512 bytes (nginx: about 120).
        let limit = data + Int64(ranges.count) * 512 + 4096
        var once = configuration
        once.maxRetries = 0
        return stream(url: url, conditional: nil, expectedLength: nil, maxBytes: limit, ranges: ranges, configuration: once)
    }

    private func stream(
        url: URL, conditional: HTTPValidator?, expectedLength: Int64?, maxBytes: Int64, range: ClosedRange<Int64>? = nil,
        completeLength: Int64? = nil, ranges: [ClosedRange<Int64>]? = nil, configuration: DownloadConfiguration? = nil,
        onStart: @escaping @Sendable (TransferCore) -> Void = { _ in }
    ) -> DownloadStream {
        let configuration = configuration ?? self.configuration
        let logger = logger
        let liveTransfers = liveTransfers
        let share = share
        return DownloadStream {
            let core = TransferCore(bufferLimit: configuration.bufferLimit)
            onStart(core)
            if url.isFileURL, configuration.allowsLocalFiles {
                LocalFileTransfer.start(
                    core: core, url: url, conditional: conditional, expectedLength: expectedLength, maxBytes: maxBytes, range: range,
                    completeLength: completeLength, multipleRanges: ranges != nil, chunkSize: configuration.largestChunk)
                return core
            }
            let secureURL: URL
            do {
                secureURL = try Self.secure(url)
            } catch {
                core.finish(failure: error, head: nil)
                return core
            }
            var request = TransferRequest(
                url: secureURL, configuration: configuration, conditional: conditional,
                expectedLength: expectedLength, maxBytes: maxBytes)
            request.range = range
            request.ranges = ranges
            request.completeLength = completeLength
            request.share = share
            logger.debug("download starting", metadata: ["download.url": "\(request.displayURL)"])
            liveTransfers.add(1)
            TransferRunner.start(core: core, request: request, logger: logger) {
                liveTransfers.add(-1)
            }
            return core
        }
    }

    /// `https` as is, `http` upgraded, anything else refused.
    static func secure(_ url: URL) throws -> URL {
        switch url.scheme?.lowercased() {
        case "https":
            return url
        case "http":
            var components = URLComponents(url: url, resolvingAgainstBaseURL: false)
            components?.scheme = "https"
            if let upgraded = components?.url {
                return upgraded
            }
        default:
            break
        }
        throw AutoupdateError(
            .invalidURL, "refusing to download \(url.displayString): only https URLs are allowed (http is upgraded)")
    }
}

/// Counts transfers whose threads are running, across threads.
final class TransferCounter: Sendable {
    private let count = Locked(0)

    var value: Int { count.withLock { $0 } }

    func add(_ delta: Int) {
        count.withLock { $0 += delta }
    }
}

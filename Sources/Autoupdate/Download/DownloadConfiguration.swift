/// How the ``Downloader`` talks to servers: trust, timeouts, caps and retries.
///
/// The defaults suit an updater polling a CDN: patient with slow links, bounded against a server
/// that drips bytes forever, sends endless data or stalls.
///
/// ### Security
/// Only HTTPS is ever spoken, for the first request and every redirect, with certificate and
/// host-name verification always on. ``caFile`` *adds* a trust anchor to the system's; there is
/// no option that turns verification off.
public struct DownloadConfiguration: Sendable, Hashable {
    /// A PEM file of extra CA certificates to trust besides the system's (a private CA, a test
    /// server). `nil` trusts the system's CAs only.
    public var caFile: String?
    /// Time allowed to establish the TCP connection and the TLS session.
    public var connectTimeout: Duration
    /// The slowest acceptable transfer: fewer than ``lowSpeedLimit`` bytes per second, averaged
    /// over ``lowSpeedWindow``, aborts the attempt (a stalled or dripping server). Time spent
    /// waiting for a slow consumer does not count.
    public var lowSpeedLimit: Int
    /// The window ``lowSpeedLimit`` is measured over.
    public var lowSpeedWindow: Duration
    /// The longest a whole download may take on the network, retries included (time spent
    /// waiting for a slow consumer does not count).
    public var deadline: Duration
    /// The most bytes any single download may deliver when the caller gives no expected length.
    public var maxBytes: Int64
    /// Redirects followed before giving up.
    public var maxRedirects: Int
    /// Retries in a row, without progress, after a transient failure (a dropped connection, a
    /// stall); a download resumes where it stopped. At most ten times as many attempts in all.
    public var maxRetries: Int
    /// The first retry's delay; each further retry doubles it, with random jitter, up to
    /// ``maxRetryDelay``.
    public var retryDelay: Duration
    /// The longest delay between two attempts.
    public var maxRetryDelay: Duration
    /// Bytes handed to the consumer at a time; small pieces from the network are coalesced.
    ///
    /// A fast transfer hands on larger chunks, about a millisecond's worth of bytes, up to half
    /// of ``bufferLimit``: each wake-up of a waiting consumer costs thread switches, which at
    /// loopback speeds took a quarter of the transfer's time with 128 KiB chunks.
    public var chunkSize: Int
    /// Bytes that may wait for a slow consumer before the transfer pauses (backpressure).
    public var bufferLimit: Int
    /// The most bytes per second a transfer receives, averaged (`--max-rate`); `nil`: as fast as
    /// the network goes. Keep it above ``lowSpeedLimit``, which a throttled transfer must still beat.
    public var maxBytesPerSecond: Int64?
    /// The proxy every request goes through: `http://`, `https://` (TLS to the proxy, verified
    /// like the server, ``caFile`` included), `socks5://` or `socks5h://` (names resolved by the
    /// proxy); credentials may be in it (`http://user:password@proxy:3128`). The server's TLS
    /// goes through the proxy end to end. `nil`: libcurl's usual variables decide, as for curl
    /// (`https_proxy` or `HTTPS_PROXY`, `all_proxy`, and `no_proxy` for the hosts that bypass it).
    public var proxy: String?
    /// `user:password` for the proxy, when they are not in ``proxy`` (`--proxy-user-file`: kept
    /// out of the command line, which other users can read).
    public var proxyCredentials: String?
    /// `file:` URLs are read from the disk (an ``UpdateURL/init(localFolder:)`` source); only an
    /// updater whose source is such a folder sets it.
    var allowsLocalFiles = false

    /// Creates a configuration; every parameter has a default.
    public init(
        caFile: String? = nil,
        connectTimeout: Duration = .seconds(15),
        lowSpeedLimit: Int = 1024,
        lowSpeedWindow: Duration = .seconds(30),
        deadline: Duration = .seconds(3600),
        maxBytes: Int64 = 4 << 30,
        maxRedirects: Int = 5,
        maxRetries: Int = 4,
        retryDelay: Duration = .milliseconds(250),
        maxRetryDelay: Duration = .seconds(8),
        chunkSize: Int = 128 << 10,
        bufferLimit: Int = 1 << 20,
        maxBytesPerSecond: Int64? = nil,
        proxy: String? = nil,
        proxyCredentials: String? = nil
    ) {
        self.maxBytesPerSecond = maxBytesPerSecond
        self.proxy = proxy
        self.proxyCredentials = proxyCredentials
        self.caFile = caFile
        self.connectTimeout = connectTimeout
        self.lowSpeedLimit = lowSpeedLimit
        self.lowSpeedWindow = lowSpeedWindow
        self.deadline = deadline
        self.maxBytes = maxBytes
        self.maxRedirects = maxRedirects
        self.maxRetries = maxRetries
        self.retryDelay = retryDelay
        self.maxRetryDelay = maxRetryDelay
        self.chunkSize = chunkSize
        self.bufferLimit = bufferLimit
    }
}

extension DownloadConfiguration {
    /// The size of a chunk while bytes arrive slowly: ``chunkSize``.
    var smallestChunk: Int { max(1, chunkSize) }

    /// The largest chunk a fast transfer hands on: half of ``bufferLimit``, or ``chunkSize`` if larger.
    var largestChunk: Int { max(smallestChunk, bufferLimit / 2) }
}

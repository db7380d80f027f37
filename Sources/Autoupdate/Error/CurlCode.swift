internal import CAutoupdateCurl

/// A libcurl result code, carried as the `underlying` cause of an ``AutoupdateError``
/// (`error.underlying as? CurlCode`), as `Errno` is for a system call.
///
/// The corresponding C type is `CURLcode`.
public struct CurlCode: RawRepresentable, Hashable, Error, Sendable, CustomStringConvertible {
    /// The `CURLcode` value.
    public let rawValue: UInt32

    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    init(_ code: CURLcode) {
        rawValue = code.rawValue
    }

    public static let ok = CurlCode(CURLE_OK)
    public static let unsupportedProtocol = CurlCode(CURLE_UNSUPPORTED_PROTOCOL)
    public static let couldNotResolveHost = CurlCode(CURLE_COULDNT_RESOLVE_HOST)
    public static let couldNotConnect = CurlCode(CURLE_COULDNT_CONNECT)
    public static let httpReturnedError = CurlCode(CURLE_HTTP_RETURNED_ERROR)
    public static let partialFile = CurlCode(CURLE_PARTIAL_FILE)
    public static let writeError = CurlCode(CURLE_WRITE_ERROR)
    public static let operationTimedOut = CurlCode(CURLE_OPERATION_TIMEDOUT)
    public static let sslConnectError = CurlCode(CURLE_SSL_CONNECT_ERROR)
    public static let tooManyRedirects = CurlCode(CURLE_TOO_MANY_REDIRECTS)
    public static let gotNothing = CurlCode(CURLE_GOT_NOTHING)
    public static let sendError = CurlCode(CURLE_SEND_ERROR)
    public static let receiveError = CurlCode(CURLE_RECV_ERROR)
    public static let peerFailedVerification = CurlCode(CURLE_PEER_FAILED_VERIFICATION)
    public static let fileSizeExceeded = CurlCode(CURLE_FILESIZE_EXCEEDED)
    public static let sslCertificateProblem = CurlCode(CURLE_SSL_CERTPROBLEM)
    public static let sslCipher = CurlCode(CURLE_SSL_CIPHER)
    public static let sslCACertificateBadFile = CurlCode(CURLE_SSL_CACERT_BADFILE)
    public static let http2 = CurlCode(CURLE_HTTP2)
    public static let http2Stream = CurlCode(CURLE_HTTP2_STREAM)

    /// libcurl's own one-line description (`curl_easy_strerror`), with the numeric code.
    public var description: String {
        "\(String(cString: curl_easy_strerror(CURLcode(rawValue: rawValue)))) (curl code \(rawValue))"
    }

    /// Failures of the TLS layer: certificates, handshakes, trust anchors.
    var isTLSFailure: Bool {
        [.sslConnectError, .peerFailedVerification, .sslCertificateProblem, .sslCipher, .sslCACertificateBadFile]
            .contains(self)
    }

    /// Failures a later attempt may not repeat: the connection dropped, reset or never came up.
    var isTransient: Bool {
        [
            .couldNotConnect, .partialFile, .gotNothing, .sendError, .receiveError, .operationTimedOut, .http2,
            .http2Stream,
        ].contains(self)
    }
}

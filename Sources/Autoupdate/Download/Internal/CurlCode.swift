import CAutoupdateCurl

/// A libcurl result code, carried as the `underlying` cause of an ``AutoupdateError``.
///
/// The corresponding C type is `CURLcode`.
struct CurlCode: RawRepresentable, Hashable, Error, CustomStringConvertible {
    let rawValue: UInt32

    init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    init(_ code: CURLcode) {
        rawValue = code.rawValue
    }

    static let ok = CurlCode(CURLE_OK)
    static let unsupportedProtocol = CurlCode(CURLE_UNSUPPORTED_PROTOCOL)
    static let couldNotResolveHost = CurlCode(CURLE_COULDNT_RESOLVE_HOST)
    static let couldNotConnect = CurlCode(CURLE_COULDNT_CONNECT)
    static let httpReturnedError = CurlCode(CURLE_HTTP_RETURNED_ERROR)
    static let partialFile = CurlCode(CURLE_PARTIAL_FILE)
    static let writeError = CurlCode(CURLE_WRITE_ERROR)
    static let operationTimedOut = CurlCode(CURLE_OPERATION_TIMEDOUT)
    static let sslConnectError = CurlCode(CURLE_SSL_CONNECT_ERROR)
    static let tooManyRedirects = CurlCode(CURLE_TOO_MANY_REDIRECTS)
    static let gotNothing = CurlCode(CURLE_GOT_NOTHING)
    static let sendError = CurlCode(CURLE_SEND_ERROR)
    static let receiveError = CurlCode(CURLE_RECV_ERROR)
    static let peerFailedVerification = CurlCode(CURLE_PEER_FAILED_VERIFICATION)
    static let fileSizeExceeded = CurlCode(CURLE_FILESIZE_EXCEEDED)
    static let sslCertificateProblem = CurlCode(CURLE_SSL_CERTPROBLEM)
    static let sslCipher = CurlCode(CURLE_SSL_CIPHER)
    static let sslCACertificateBadFile = CurlCode(CURLE_SSL_CACERT_BADFILE)
    static let http2 = CurlCode(CURLE_HTTP2)
    static let http2Stream = CurlCode(CURLE_HTTP2_STREAM)

    /// libcurl's own one-line description (`curl_easy_strerror`), with the numeric code.
    var description: String {
        "\(String(cString: curl_easy_strerror(CURLcode(rawValue: rawValue)))) (curl code \(rawValue))"
    }

    /// Failures of the TLS layer: certificates, handshakes, trust anchors.
    var isTLSFailure: Bool {
        [.sslConnectError, .peerFailedVerification, .sslCertificateProblem, .sslCipher, .sslCACertificateBadFile]
            .contains(self)
    }

    /// Failures a later attempt may not repeat: the connection dropped, reset or never came up.
    var isTransient: Bool {
        [.couldNotConnect, .partialFile, .gotNothing, .sendError, .receiveError, .operationTimedOut, .http2,
         .http2Stream].contains(self)
    }
}

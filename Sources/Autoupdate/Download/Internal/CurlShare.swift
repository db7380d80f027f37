import CAutoupdateCurl

/// The connection cache every transfer of one ``Downloader`` shares (see
/// `autoupdate_curl_share_new`): a differential update's ranges, the manifest and the index go
/// over one kept-alive connection instead of a TLS handshake each. Freed when the downloader and
/// every transfer that used it are gone.
// @unchecked: libcurl takes the share's locks (our pthread mutexes) around every use.
final class CurlShare: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<autoupdate_curl_share>?

    init() {
        CurlGlobal.ensureInitialized()
        pointer = autoupdate_curl_share_new()
    }

    deinit {
        if let pointer {
            autoupdate_curl_share_free(pointer)
        }
    }
}

import CAutoupdateCurl
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Owns one libcurl easy handle and the C memory its options point at.
///
/// The corresponding C type is `CURL *`. Created, used and released on one transfer thread.
final class CurlEasy {
    /// The handle; valid until `deinit`.
    let handle: UnsafeMutableRawPointer
    /// Request headers handed to `CURLOPT_HTTPHEADER`; libcurl reads them during the transfer,
    /// so they live as long as the handle.
    private var headerList: UnsafeMutablePointer<curl_slist>?
    /// `CURLOPT_ERRORBUFFER`: libcurl writes its detailed message here.
    private let errorBuffer: UnsafeMutablePointer<CChar>

    init() throws {
        CurlGlobal.ensureInitialized()
        guard let handle = curl_easy_init() else {
            throw AutoupdateError(.network, "libcurl could not create a transfer handle (out of memory?)")
        }
        self.handle = handle
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(to: 0)
        try set(CURLOPT_ERRORBUFFER, pointer: UnsafeRawPointer(errorBuffer))
    }

    deinit {
        curl_easy_cleanup(handle)
        curl_slist_free_all(headerList)
        errorBuffer.deallocate()
    }

    /// The detailed message of the last failure, or `nil`.
    var errorMessage: String? {
        let message = String(cString: errorBuffer)
        return message.isEmpty ? nil : message.trimmingWhitespace(andNewlines: true)
    }

    func set(_ option: CURLoption, _ value: Int) throws {
        try check(autoupdate_curl_setopt_long(handle, option, value), option)
    }

    func set(_ option: CURLoption, offset value: Int64) throws {
        try check(autoupdate_curl_setopt_offset(handle, option, curl_off_t(value)), option)
    }

    /// String options: libcurl copies the string (since 7.17), so it need not outlive the call.
    func set(_ option: CURLoption, _ value: String) throws {
        try value.withCString { try check(autoupdate_curl_setopt_pointer(handle, option, $0), option) }
    }

    func set(_ option: CURLoption, pointer: UnsafeRawPointer?) throws {
        try check(autoupdate_curl_setopt_pointer(handle, option, pointer), option)
    }

    /// `CURLOPT_SHARE`: the downloader's connection cache.
    func use(_ share: CurlShare) throws {
        guard let pointer = share.pointer else { return }
        try check(autoupdate_curl_use_share(handle, pointer), CURLOPT_SHARE)
    }

    func set(_ option: CURLoption, callback: autoupdate_curl_data_callback) throws {
        try check(autoupdate_curl_setopt_data_callback(handle, option, callback), option)
    }

    /// Replaces the extra request headers (`Name: value` lines).
    func setHeaders(_ lines: [String]) throws {
        var list: UnsafeMutablePointer<curl_slist>?
        for line in lines {
            guard let appended = curl_slist_append(list, line) else {
                curl_slist_free_all(list)
                throw AutoupdateError(.network, "libcurl could not store a request header (out of memory?)")
            }
            list = appended
        }
        try check(autoupdate_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, list), CURLOPT_HTTPHEADER)
        curl_slist_free_all(headerList)
        headerList = list
    }

    /// The status of the last response received (0 before any).
    var responseCode: Int {
        var code = 0
        _ = autoupdate_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &code)
        return code
    }

    /// The proxy's answer to the CONNECT that opens the tunnel (0 without a proxy).
    ///
    /// - SeeAlso: https://curl.se/libcurl/c/CURLINFO_HTTP_CONNECTCODE.html
    var proxyConnectCode: Int {
        var code = 0
        _ = autoupdate_curl_getinfo_long(handle, CURLINFO_HTTP_CONNECTCODE, &code)
        return code
    }

    /// The response's Content-Length, or `nil` when the server sent none.
    var contentLength: Int64? {
        var length: curl_off_t = -1
        guard autoupdate_curl_getinfo_offset(handle, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) == CURLE_OK,
            length >= 0
        else { return nil }
        return Int64(length)
    }

    /// The URL a refused or pending redirect points to, or `nil`.
    var redirectURL: String? {
        var pointer: UnsafeMutablePointer<CChar>?
        guard autoupdate_curl_getinfo_string(handle, CURLINFO_REDIRECT_URL, &pointer) == CURLE_OK, let pointer else {
            return nil
        }
        return String(cString: pointer)
    }

    /// The URL of the last request, after redirects.
    var effectiveURL: String? {
        var pointer: UnsafeMutablePointer<CChar>?
        guard autoupdate_curl_getinfo_string(handle, CURLINFO_EFFECTIVE_URL, &pointer) == CURLE_OK, let pointer else {
            return nil
        }
        return String(cString: pointer)
    }

    /// The folder of trust anchors this libcurl uses by default (`CURLINFO_CAPATH`), or `nil`.
    var defaultCAPath: String? {
        var pointer: UnsafeMutablePointer<CChar>?
        guard autoupdate_curl_getinfo_string(handle, CURLINFO_CAPATH, &pointer) == CURLE_OK, let pointer else {
            return nil
        }
        return String(cString: pointer)
    }

    private func check(_ code: CURLcode, _ option: CURLoption) throws {
        guard code == CURLE_OK else {
            throw AutoupdateError(
                .network, "libcurl refused option \(option.rawValue): \(CurlCode(code))", underlying: CurlCode(code))
        }
    }
}

@available(*, unavailable)
extension CurlEasy: Sendable {}

/// `curl_global_init`, exactly once per process, before the first handle.
enum CurlGlobal {
    private static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK

    static func ensureInitialized() {
        _ = initialized
    }
}

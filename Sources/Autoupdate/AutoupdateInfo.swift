import CAutoupdateBzip2
import CAutoupdateCurl
import CAutoupdateSodium
import CAutoupdateZlib

/// Facts about this build of the library.
public enum AutoupdateInfo {
    /// The library's own version.
    public static let version = "0.1.0"

    /// The `User-Agent` every request sends: `autoupdate/<version>`.
    public static var userAgent: String { "autoupdate/\(version)" }

    /// The C libraries this build runs against, with the versions loaded at run time:
    /// libcurl (and its TLS backend), zlib, libbz2 and libsodium.
    public static var linkedLibraries: KeyValuePairs<String, String> {
        let curl = autoupdate_curl_version_info()
        let curlVersion = curl.flatMap { $0.pointee.version.map { String(cString: $0) } } ?? "unknown"
        let tls = curl.flatMap { $0.pointee.ssl_version.map { String(cString: $0) } } ?? "no TLS"
        // libbz2 reports "1.0.8, 13-Jul-2019"; the date is noise.
        let bzip2 = String(cString: BZ2_bzlibVersion()).split(separator: ",").first.map(String.init) ?? "unknown"
        return [
            "libcurl": "\(curlVersion) (\(tls))",
            "zlib": String(cString: zlibVersion()),
            "libbz2": bzip2,
            "libsodium": String(cString: sodium_version_string()),
        ]
    }
}

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// The base URL an app updates from, normalized by the seed's rules.
///
/// - An empty URL is an error.
/// - No scheme means HTTPS (`example.com/app` → `https://example.com/app/`); `host:port/path` too.
/// - `http` is upgraded to `https`; any other scheme (`ftp`, `file`, …) is an error.
/// - Parameters (`;p`), query and fragment are stripped; a trailing `/` is added.
/// - Credentials in the URL (`user:pass@host`) are refused: they would end up in logs.
///
/// ```swift
/// let base = try UpdateURL("http://example.com/app?x=1")
/// base.url                           // https://example.com/app/
/// base.appending("version.txt")      // https://example.com/app/version.txt
/// ```
///
/// ### Security
/// HTTPS is enforced here and again by the downloader, for redirects too; no switch turns it off.
public struct UpdateURL: Sendable, Hashable, CustomStringConvertible {
    /// The normalized base URL: `https`, ending with `/`, without query, fragment or parameters.
    public let url: URL

    /// Normalizes a base URL by the seed's rules.
    ///
    /// - Parameter text: The URL as a user wrote it.
    /// - Throws: ``AutoupdateError`` with code ``AutoupdateError/Code/invalidURL`` naming the URL
    ///   and the rule it breaks.
    public init(_ text: String) throws {
        let trimmed = text.trimmingWhitespace(andNewlines: true)
        let shown = quoted(text)
        guard !trimmed.isEmpty else {
            throw AutoupdateError(.invalidURL, "the update URL is empty; give the HTTPS folder that holds version.txt")
        }

        let withScheme: String
        switch Self.scheme(of: trimmed) {
        case nil:
            withScheme = trimmed.hasPrefix("//") ? "https:" + trimmed : "https://" + trimmed
        case let scheme? where scheme == "https" || scheme == "http":
            withScheme = "https" + trimmed.dropFirst(scheme.count)
        case let scheme?:
            throw AutoupdateError(
                .invalidURL, "the update URL \(shown) uses the scheme '\(scheme)'; only https (or http, upgraded to https) is allowed")
        }

        guard var components = URLComponents(string: withScheme) else {
            throw AutoupdateError.invalidUpdateURL(shown)
        }
        guard let host = components.host, !host.isEmpty else {
            throw AutoupdateError(.invalidURL, "the update URL \(shown) has no host name")
        }
        // URLComponents takes any number as a port; curl would fail later, with a less clear word.
        if let port = components.port, !(1...65535).contains(port) {
            throw AutoupdateError.invalidPort(shown, port: "\(port)")
        }
        if components.port == nil, let portText = Self.portText(of: withScheme), !portText.isEmpty {
            throw AutoupdateError.invalidPort(shown, port: quoted(portText))
        }
        guard components.user == nil, components.password == nil else {
            throw AutoupdateError(
                .invalidURL,
                "the update URL for host '\(host)' holds credentials (user@host); they are refused because they would be logged")
        }
        components.scheme = "https"
        components.query = nil
        components.fragment = nil
        components.percentEncodedPath = Self.normalizedPath(components.percentEncodedPath)
        guard let url = components.url else {
            throw AutoupdateError.invalidUpdateURL(shown)
        }
        self.url = url
    }

    /// A local folder laid out like the server (`--from DIR`: a USB stick, a mounted share), as
    /// a `file:` URL. Nothing about it is trusted: only signatures vouch for what it holds.
    ///
    /// - Parameter path: The folder (relative to the current directory unless absolute).
    /// - Throws: ``AutoupdateError`` `.invalidURL` when `path` is not an existing folder.
    public init(localFolder path: String) throws {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        guard FileManager.default.isFolder(atPath: absolute) == true else {
            throw AutoupdateError(.invalidURL, "the update source \(quoted(path)) is not a folder")
        }
        url = URL(fileURLWithPath: absolute, isDirectory: true).standardizedFileURL
    }

    /// An update URL, or a local folder's `file:` URL as ``description`` gives it (what a launcher
    /// passes on to its app, and takes back).
    ///
    /// - Parameter text: An update URL, or a `file:` URL of a local folder.
    /// - Throws: ``AutoupdateError`` `.invalidURL`, as ``init(_:)`` and ``init(localFolder:)`` do.
    public init(source text: String) throws {
        if text.hasPrefix("file://"), let local = URL(string: text), local.isFileURL, local.host == nil || local.host == "" {
            try self.init(localFolder: local.path)
        } else {
            try self.init(text)
        }
    }

    /// Whether this is a local folder (``init(localFolder:)``) rather than an HTTPS server.
    public var isLocalFolder: Bool { url.isFileURL }

    /// The URL of a file in the update folder.
    ///
    /// - Parameter fileName: A single file name such as `version.txt` or an ``ArchiveName``'s name.
    /// - Returns: The base URL with the name appended, percent-encoded as needed.
    public func appending(_ fileName: String) -> URL {
        url.appending(path: fileName, directoryHint: .notDirectory)
    }

    /// The name an app updating from here has unless it is given one (``TrustPolicy/app``):
    /// the URL's last path component (`https://example.com/apps/myapp/` → `myapp`), or its host
    /// when the path is `/`.
    public var defaultAppIdentity: String {
        let last = url.lastPathComponent
        return last.isEmpty || last == "/" ? (url.host ?? "") : last
    }

    /// The normalized URL as text.
    public var description: String { url.absoluteString }

    /// The scheme at the start of `text`, lowercased, or `nil` when `text` has none.
    ///
    /// `host:8443/path` has no scheme: a colon followed by a port number is an authority. Any other
    /// `word:` prefix (`mailto:`, `file:/x`) is a scheme, so it can be refused by name.
    private static func scheme(of text: String) -> String? {
        guard let colon = text.firstIndex(of: ":") else {
            return nil
        }
        let candidate = text[..<colon]
        guard let first = candidate.first, first.isASCII, first.isLetter,
            candidate.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) })
        else {
            return nil
        }
        let rest = text[text.index(after: colon)...]
        if !rest.hasPrefix("//") {
            let port = rest.prefix(while: { $0.isASCII && $0.isNumber })
            if !port.isEmpty, port.endIndex == rest.endIndex || rest[port.endIndex] == "/" {
                return nil
            }
        }
        return candidate.lowercased()
    }

    /// The text after the host's `:` in `https://host:port/…`, if there is a colon (IPv6
    /// literals in brackets skipped).
    private static func portText(of url: String) -> String? {
        guard let start = url.firstRange(of: "://")?.upperBound else { return nil }
        var authority = url[start...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") {
            authority = authority[authority.index(after: at)...]
        }
        let hostEnd = authority.lastIndex(of: "]") ?? authority.startIndex
        guard let colon = authority[hostEnd...].lastIndex(of: ":") else { return nil }
        return String(authority[authority.index(after: colon)...])
    }

    /// Drops the parameters of the last path segment (`/a/b;p` → `/a/b`, as Python's `urlparse`)
    /// and ensures a trailing `/`.
    private static func normalizedPath(_ path: String) -> String {
        var path = path
        let lastSegmentStart = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
        if let semicolon = path[lastSegmentStart...].firstIndex(of: ";") {
            path = String(path[..<semicolon])
        }
        return path.hasSuffix("/") ? path : path + "/"
    }
}

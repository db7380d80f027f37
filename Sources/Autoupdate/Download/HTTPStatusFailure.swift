#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// The details of an HTTP error response, carried as the `underlying` cause of an
/// ``AutoupdateError`` with code ``AutoupdateError/Code/httpStatus``.
public struct HTTPStatusFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// The status code (404, 500, 429, 503, …).
    public let status: Int
    /// The URL that answered with it (after redirects).
    public let url: URL
    /// How long the server asked clients to wait (`Retry-After`), on 429 and 503 especially.
    public let retryAfter: Duration?

    public var description: String {
        var text = "HTTP \(status) from \(url.absoluteString)"
        if let retryAfter {
            text += " (Retry-After: \(retryAfter.components.seconds) s)"
        }
        return text
    }
}

extension AutoupdateError {
    /// The HTTP status of an ``Code/httpStatus`` error, else `nil`.
    public var httpStatus: Int? { (underlying as? HTTPStatusFailure)?.status }

    /// The server's `Retry-After` of an ``Code/httpStatus`` error, else `nil`.
    public var retryAfter: Duration? { (underlying as? HTTPStatusFailure)?.retryAfter }
}

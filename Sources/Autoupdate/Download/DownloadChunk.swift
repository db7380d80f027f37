/// A piece of a download, in order: the bytes and how far the download has come.
public struct DownloadChunk: Sendable {
    /// The next bytes of the body; never empty.
    public let bytes: [UInt8]
    /// Progress after these bytes.
    public let progress: DownloadProgress
}

/// How far a download has come.
public struct DownloadProgress: Sendable, Hashable {
    /// Bytes of the body received so far, resumed attempts included.
    public let receivedBytes: Int64
    /// The body's full length, when the server announced it.
    public let totalBytes: Int64?
    /// The recent transfer rate, in bytes per second.
    public let bytesPerSecond: Double

    /// The fraction done, from 0 to 1, when the total is known.
    public var fractionCompleted: Double? {
        guard let totalBytes, totalBytes > 0 else { return nil }
        return min(1, Double(receivedBytes) / Double(totalBytes))
    }

    /// The time left at the recent rate, when the total is known.
    public var estimatedTimeRemaining: Duration? {
        guard let totalBytes, bytesPerSecond > 0 else { return nil }
        return .seconds(Double(max(0, totalBytes - receivedBytes)) / bytesPerSecond)
    }
}

/// What identifies one version of a resource on the server, for conditional requests and resume.
///
/// Sent back as `If-None-Match` / `If-Modified-Since` (polling) or `If-Range` (resuming).
public struct HTTPValidator: Sendable, Hashable, Codable {
    /// The `ETag` response header, quotes and all (`"abc"`, or `W/"abc"` when weak).
    public var entityTag: String?
    /// The `Last-Modified` response header, as sent.
    public var lastModified: String?

    public init(entityTag: String? = nil, lastModified: String? = nil) {
        self.entityTag = entityTag
        self.lastModified = lastModified
    }

    /// Whether there is anything to validate with.
    var isEmpty: Bool { entityTag == nil && lastModified == nil }

    /// A strong entity tag (weak ones must not be used for ranges).
    var strongEntityTag: String? {
        guard let entityTag, !entityTag.hasPrefix("W/") else { return nil }
        return entityTag
    }

    /// The value for `If-Range`: a strong entity tag, else the modification date.
    var ifRangeValue: String? { strongEntityTag ?? lastModified }

    /// Whether a response carries the same representation this validator names.
    func matches(_ other: HTTPValidator) -> Bool {
        if let tag = strongEntityTag {
            return other.strongEntityTag == tag
        }
        if let lastModified {
            return other.lastModified == lastModified
        }
        return false
    }
}

/// The result of ``Downloader/fetch(_:validator:maxBytes:)``.
public enum FetchResult: Sendable {
    /// The server answered `304 Not Modified`: what the validator names is still current.
    case notModified
    /// The resource's body and its validator for the next conditional request.
    case modified(body: [UInt8], validator: HTTPValidator?)
}

public import Foundation

/// Whom an update must come from, and how fresh the server's word must be.
///
/// ```swift
/// let trust = TrustPolicy(publicKeys: [try Minisign.PublicKey(fileOrKey: "/etc/myapp/minisign.pub")],
///                         maxVersionAge: .seconds(7 * 86_400))
/// ```
/// With no keys (the default) HTTPS alone is trusted. With keys, every archive must carry a
/// minisign signature (`ARCHIVE.minisig`) by one of them whose trusted comment names the version
/// and the archive (see ``ReleaseComment``); anything else is refused and the app is untouched.
public struct TrustPolicy: Sendable, Hashable {
    /// The publisher's keys; several during a key rotation. Empty: signatures are not checked.
    public var publicKeys: [Minisign.PublicKey]
    /// Require `version.txt.minisig`, by one of the keys, whose `expires:` lies in the future
    /// (freeze protection: a server that keeps serving an old version is noticed once the
    /// publisher stops re-signing it).
    public var requireFreshVersion: Bool
    /// Also require that signature to be at most this old (its `timestamp:`). Implies
    /// `requireFreshVersion`.
    public var maxVersionAge: Duration?

    public init(publicKeys: [Minisign.PublicKey] = [], requireFreshVersion: Bool = false, maxVersionAge: Duration? = nil) {
        self.publicKeys = publicKeys
        self.requireFreshVersion = requireFreshVersion || maxVersionAge != nil
        self.maxVersionAge = maxVersionAge
    }

    /// Whether archives must be signed.
    public var requiresSignatures: Bool { !publicKeys.isEmpty }
}

/// The trusted comment of a signature made by `autoupdate publish` or `autoupdate sign`: minisign's
/// own `key:value` fields, separated by tabs.
///
/// ```
/// timestamp:1764000000	file:project.zip	version:2.0	hashed
/// timestamp:1764000000	file:version.txt	expires:1764604800	hashed
/// ```
/// `timestamp` is when it was signed (Unix time), `file` the signed file's name, `version` the
/// release it belongs to (archives), `expires` until when it may be trusted (`version.txt`).
public struct ReleaseComment: Sendable, Hashable {
    public var fields: [String: String]

    /// Parses a trusted comment; fields without `:` are flags (`hashed`) with an empty value.
    public init(_ comment: String) {
        var fields: [String: String] = [:]
        for field in comment.split(separator: "\t") {
            if let colon = field.firstIndex(of: ":") {
                fields[String(field[..<colon])] = String(field[field.index(after: colon)...])
            } else {
                fields[String(field)] = ""
            }
        }
        self.fields = fields
    }

    /// The comment for an archive or a file.
    public static func make(file: String, version: Version? = nil, timestamp: Date = Date(), expires: Date? = nil) -> String {
        var parts = ["timestamp:\(Int64(timestamp.timeIntervalSince1970))", "file:\(file)"]
        if let version { parts.append("version:\(version)") }
        if let expires { parts.append("expires:\(Int64(expires.timeIntervalSince1970))") }
        parts.append("hashed")
        return parts.joined(separator: "\t")
    }

    public var file: String? { fields["file"] }
    public var version: String? { fields["version"] }
    public var timestamp: Date? { fields["timestamp"].flatMap(Int64.init).map { Date(timeIntervalSince1970: TimeInterval($0)) } }
    public var expires: Date? { fields["expires"].flatMap(Int64.init).map { Date(timeIntervalSince1970: TimeInterval($0)) } }

    /// Checks that an archive's signature speaks of this archive and this version.
    func check(archive: String, version: Version) throws {
        guard let file else {
            throw AutoupdateError(.signature, "the signature's trusted comment names no file (expected 'file:\(archive)'; sign with 'autoupdate publish --secret-key' or 'autoupdate sign --version')")
        }
        guard file == archive else {
            throw AutoupdateError(.signature, "the signature is for \(quoted(file)), not for \(quoted(archive))")
        }
        guard let named = self.version else {
            throw AutoupdateError(.signature, "the signature's trusted comment names no version (expected 'version:\(version)')")
        }
        guard let signed = try? Version(named), signed == version else {
            throw AutoupdateError(.signature, "the signature is for version \(quoted(named)), not for \(version) (a replayed or mismatched release)")
        }
    }
}

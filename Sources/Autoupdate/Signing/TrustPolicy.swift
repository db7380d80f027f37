#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

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
    /// The app's identity (`app:` in a signature's trusted comment, set by `publish --app`): with
    /// one publisher key for several apps, app A's signed release is then refused by app B.
    /// `nil` (the default) expects the update URL's last path component
    /// (``UpdateURL/defaultAppIdentity``) of signatures that name an app, and accepts those that
    /// name none (from autoupdate 0.1, `minisign -S`, or a publish without `--app`); set, it
    /// requires signatures to name exactly it.
    public var app: String?
    /// A mirror's releases are the primary URL's: their identity is its (not the mirror's path).
    var mirroredIdentity: String?

    public init(
        publicKeys: [Minisign.PublicKey] = [], requireFreshVersion: Bool = false, maxVersionAge: Duration? = nil, app: String? = nil
    ) {
        self.publicKeys = publicKeys
        self.requireFreshVersion = requireFreshVersion || maxVersionAge != nil
        self.maxVersionAge = maxVersionAge
        self.app = app
    }

    /// Whether archives must be signed.
    public var requiresSignatures: Bool { !publicKeys.isEmpty }

    /// The identity signatures from `url` must name, when they name one.
    public func appIdentity(for url: UpdateURL) -> String {
        app ?? mirroredIdentity ?? url.defaultAppIdentity
    }
}

/// The trusted comment of a signature made by `autoupdate publish` or `autoupdate sign`: minisign's
/// own `key:value` fields, separated by tabs.
///
/// ```
/// timestamp:1764000000	file:project.zip	version:2.0	hashed
/// timestamp:1764000000	file:version.txt	expires:1764604800	hashed
/// ```
/// `timestamp` is when it was signed (Unix time), `file` the signed file's name, `version` the
/// release it belongs to (archives), `expires` until when it may be trusted (`version.txt`),
/// `app` the app it is for (see ``TrustPolicy/app``), `size` the archive's exact length and
/// `unpacked` the bytes its files hold once extracted (caps on a download and its extraction
/// before the signature over the bytes can be checked), `serial` a release index's serial.
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
    public static func make(
        file: String, version: Version? = nil, timestamp: Date = Date(), expires: Date? = nil, app: String? = nil,
        size: Int64? = nil, unpacked: Int64? = nil, serial: UInt64? = nil
    ) -> String {
        var parts = ["timestamp:\(Int64(timestamp.timeIntervalSince1970))", "file:\(file)"]
        if let version { parts.append("version:\(version)") }
        if let expires { parts.append("expires:\(Int64(expires.timeIntervalSince1970))") }
        if let app { parts.append("app:\(app)") }
        if let size { parts.append("size:\(size)") }
        if let unpacked { parts.append("unpacked:\(unpacked)") }
        if let serial { parts.append("serial:\(serial)") }
        parts.append("hashed")
        return parts.joined(separator: "\t")
    }

    /// Checks that `name` can be an app identity in a trusted comment: 1–128 printable
    /// characters, none of them a tab or a newline.
    public static func validate(app name: String) throws {
        guard !name.isEmpty, name.count <= 128, !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw AutoupdateError(
                .invalidArgument, "the app name \(quoted(name)) must be 1 to 128 printable characters, without tabs or newlines")
        }
    }

    public var file: String? { fields["file"] }
    public var version: String? { fields["version"] }
    public var app: String? { fields["app"] }
    /// The archive's exact length in bytes.
    public var size: Int64? { fields["size"].flatMap(Int64.init).flatMap { $0 >= 0 ? $0 : nil } }
    /// The bytes the archive's files hold once extracted.
    public var unpacked: Int64? { fields["unpacked"].flatMap(Int64.init).flatMap { $0 >= 0 ? $0 : nil } }
    /// A release index's serial (`release.json`).
    public var serial: UInt64? { fields["serial"].flatMap { UInt64($0) } }
    public var timestamp: Date? { fields["timestamp"].flatMap(Int64.init).map { Date(timeIntervalSince1970: TimeInterval($0)) } }
    public var expires: Date? { fields["expires"].flatMap(Int64.init).map { Date(timeIntervalSince1970: TimeInterval($0)) } }

    /// Checks that a signature speaks of this app: a named app must be `identity`; a signature
    /// naming none is accepted unless the identity was pinned (see ``TrustPolicy/app``).
    func check(app identity: String, pinned: Bool, signature: String) throws {
        if let app {
            guard app == identity else {
                throw AutoupdateError(
                    .signature,
                    "\(signature) is for the app \(quoted(app)), not for \(quoted(identity)) (a release of another app signed with the same key); if this is that app, pass --app \(app)"
                )
            }
        } else if pinned {
            throw AutoupdateError(
                .signature, "\(signature) names no app, and this client requires app \(quoted(identity)) (publish with --app \(identity))")
        }
    }

    /// Checks that an archive's signature speaks of this archive and this version.
    func check(archive: String, version: Version) throws {
        guard let file else {
            throw AutoupdateError(
                .signature,
                "the signature's trusted comment names no file (expected 'file:\(archive)'; sign with 'autoupdate publish --secret-key' or 'autoupdate sign --version')"
            )
        }
        guard file == archive else {
            throw AutoupdateError(.signature, "the signature is for \(quoted(file)), not for \(quoted(archive))")
        }
        guard let named = self.version else {
            throw AutoupdateError(.signature, "the signature's trusted comment names no version (expected 'version:\(version)')")
        }
        guard let signed = try? Version(named), signed == version else {
            throw AutoupdateError(
                .signature, "the signature is for version \(quoted(named)), not for \(version) (a replayed or mismatched release)")
        }
    }
}

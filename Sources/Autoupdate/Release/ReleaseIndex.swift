#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// `release.json`: the server's signed index of every release it still offers, written by
/// `autoupdate publish`, `rollout` and `yank`, read by every client before `version.txt`.
///
/// ```json
/// {
///   "schema": 1,
///   "serial": 1764964800,
///   "generated": "2026-12-05T20:00:00Z",
///   "channels": ["stable", "beta", "alpha"],
///   "releases": [
///     { "version": "2.0", "channel": "stable", "archive": "project.zip",
///       "path": "releases/2.0/project.zip", "size": 18211, "unpacked": 52000,
///       "sha256": "…", "blake2b": "…", "published": "2026-12-05T20:00:00Z",
///       "rollout": 100, "required": false, "yanked": false,
///       "manifest": { "path": "releases/2.0/manifest.json", "size": 811, "sha256": "…" } }
///   ]
/// }
/// ```
///
/// Decoding checks everything a hostile server could get wrong (see ``decode(_:source:)``); an index
/// that fails a check is refused whole.
public struct ReleaseIndex: Sendable, Hashable, Codable {
    /// The schema this autoupdate writes and reads: 1. A higher one is refused, naming it.
    public static let currentSchema = 1
    /// The channels when an index names none, most stable first.
    public static let defaultChannels = ["stable", "beta", "alpha"]
    /// The largest `release.json` a client reads: 32 MiB.
    public static let maximumBytes = 32 << 20

    /// The schema version; see ``currentSchema``.
    public var schema: Int
    /// Increases with every change of the index (publish, rollout, yank). A client remembers the
    /// highest it has seen and refuses an index with a lower one (a replayed or stale index).
    public var serial: UInt64
    /// When this index was written (ISO 8601, UTC).
    public var generated: String
    /// The channels, most stable first; every release names one of them.
    public var channels: [String]
    /// Every release still offered, oldest first.
    public var releases: [Release]

    public init(serial: UInt64, generated: Date = Date(), channels: [String] = ReleaseIndex.defaultChannels, releases: [Release] = []) {
        self.schema = Self.currentSchema
        self.serial = serial
        self.generated = ReleaseIndex.timestamp(generated)
        self.channels = channels
        self.releases = releases
    }

    /// One release.
    public struct Release: Sendable, Hashable, Codable {
        public var version: Version
        /// The channel it is published on (`stable` by default).
        public var channel: String
        /// The archive's file name; its extension says the format.
        public var archive: String
        /// Where the archive is, relative to the update URL (`releases/2.0/project.zip`).
        public var path: String
        /// The archive's exact length in bytes.
        public var size: Int64
        /// What its files hold once extracted, in bytes.
        public var unpacked: Int64
        /// SHA-256 of the archive, lowercase hex.
        public var sha256: String
        /// BLAKE2b-512 of the archive (minisign's prehash), lowercase hex.
        public var blake2b: String
        /// When it was published (ISO 8601, UTC).
        public var published: String
        /// The release notes, as text.
        public var notes: String?
        /// The percentage of installs it is offered to (0 halts it, 100 is everybody).
        public var rollout: Double
        /// Installs below this version must update (an update they cannot decline or defer).
        public var minimumVersion: Version?
        /// Installed before anything above it: no install skips it.
        public var required: Bool
        /// Pulled: never installed, and (with a signed index) installs running it move off it.
        public var yanked: Bool
        /// Why it was yanked.
        public var yankReason: String?
        /// Where the release's file manifest is (every entry of the archive, with its SHA-256),
        /// and the size and digest it must have: the signed index vouches for it, while the
        /// index itself stays small however many files and releases there are.
        public var manifest: ManifestReference?

        public init(
            version: Version, channel: String = "stable", archive: String, path: String, size: Int64, unpacked: Int64, sha256: String,
            blake2b: String, published: Date = Date(), notes: String? = nil, rollout: Double = 100, minimumVersion: Version? = nil,
            required: Bool = false, yanked: Bool = false, yankReason: String? = nil,
            manifest: ManifestReference? = nil
        ) {
            self.version = version
            self.channel = channel
            self.archive = archive
            self.path = path
            self.size = size
            self.unpacked = unpacked
            self.sha256 = sha256
            self.blake2b = blake2b
            self.published = ReleaseIndex.timestamp(published)
            self.notes = notes
            self.rollout = rollout
            self.minimumVersion = minimumVersion
            self.required = required
            self.yanked = yanked
            self.yankReason = yankReason
            self.manifest = manifest
        }

        private enum CodingKeys: String, CodingKey {
            case version, channel, archive, path, size, unpacked, sha256, blake2b, published, notes, rollout, minimumVersion, required
            case yanked, yankReason, manifest
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            version = try Version(container.decode(String.self, forKey: .version))
            channel = try container.decode(String.self, forKey: .channel)
            archive = try container.decode(String.self, forKey: .archive)
            path = try container.decode(String.self, forKey: .path)
            size = try container.decode(Int64.self, forKey: .size)
            unpacked = try container.decode(Int64.self, forKey: .unpacked)
            sha256 = try container.decode(String.self, forKey: .sha256)
            blake2b = try container.decode(String.self, forKey: .blake2b)
            published = try container.decode(String.self, forKey: .published)
            notes = try container.decodeIfPresent(String.self, forKey: .notes)
            rollout = try container.decodeIfPresent(Double.self, forKey: .rollout) ?? 100
            minimumVersion = try container.decodeIfPresent(String.self, forKey: .minimumVersion).map(Version.init)
            required = try container.decodeIfPresent(Bool.self, forKey: .required) ?? false
            yanked = try container.decodeIfPresent(Bool.self, forKey: .yanked) ?? false
            yankReason = try container.decodeIfPresent(String.self, forKey: .yankReason)
            manifest = try container.decodeIfPresent(ManifestReference.self, forKey: .manifest)
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(version.description, forKey: .version)
            try container.encode(channel, forKey: .channel)
            try container.encode(archive, forKey: .archive)
            try container.encode(path, forKey: .path)
            try container.encode(size, forKey: .size)
            try container.encode(unpacked, forKey: .unpacked)
            try container.encode(sha256, forKey: .sha256)
            try container.encode(blake2b, forKey: .blake2b)
            try container.encode(published, forKey: .published)
            try container.encodeIfPresent(notes, forKey: .notes)
            try container.encode(rollout, forKey: .rollout)
            try container.encodeIfPresent(minimumVersion?.description, forKey: .minimumVersion)
            try container.encode(required, forKey: .required)
            try container.encode(yanked, forKey: .yanked)
            try container.encodeIfPresent(yankReason, forKey: .yankReason)
            try container.encodeIfPresent(manifest, forKey: .manifest)
        }
    }

    /// Where a release's manifest is, relative to the update URL, with its exact size and SHA-256.
    public struct ManifestReference: Sendable, Hashable, Codable {
        public var path: String
        public var size: Int64
        public var sha256: String

        public init(path: String, size: Int64, sha256: String) {
            self.path = path
            self.size = size
            self.sha256 = sha256
        }
    }

    /// The release with this version, if the index offers it.
    public func release(_ version: Version) -> Release? {
        releases.first { $0.version == version }
    }

    /// The index as the server serves it: pretty-printed JSON with sorted keys and a final newline.
    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self)) + [UInt8(ascii: "\n")]
    }

    /// Reads and checks an index: the schema, unique versions, channels that exist, archive
    /// names autoupdate can read, paths that stay under the update URL, sizes, digests and
    /// percentages in range.
    ///
    /// - Parameters:
    ///   - bytes: The index as served.
    ///   - source: Names the index in messages (its URL or path).
    /// - Throws: ``AutoupdateError`` `.corruptedFile` naming the field at fault.
    public static func decode(_ bytes: [UInt8], source: String = "release.json") throws -> ReleaseIndex {
        let fault = { (reason: String) in AutoupdateError(.corruptedFile, "\(source) is not a valid release index: \(reason)") }
        struct Header: Decodable { let schema: Int? }
        guard bytes.count <= maximumBytes else { throw fault("it is larger than \(maximumBytes) bytes") }
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: Data(bytes))
        } catch {
            throw fault("it is not a JSON object")
        }
        guard let schema = header.schema else { throw fault("it has no \"schema\"") }
        guard schema == currentSchema else {
            throw fault("its schema is \(schema), and this autoupdate reads schema \(currentSchema) (update autoupdate)")
        }
        let index: ReleaseIndex
        do {
            index = try JSONDecoder().decode(ReleaseIndex.self, from: Data(bytes))
        } catch let error as AutoupdateError {
            throw fault(error.message)
        } catch let error as DecodingError {
            throw fault(describe(error))
        }
        try index.validate(fault)
        return index
    }

    private func validate(_ fault: (String) -> AutoupdateError) throws {
        guard !channels.isEmpty else { throw fault("\"channels\" is empty") }
        guard Set(channels).count == channels.count else { throw fault("\"channels\" names a channel twice") }
        for channel in channels where !Self.isValidChannel(channel) {
            throw fault("the channel \(quoted(channel)) is not 1 to 64 of a-z, 0-9, '.', '_' and '-'")
        }
        var seen: Set<Version> = []
        for release in releases {
            let name = "release \(release.version)"
            guard seen.insert(release.version).inserted else { throw fault("\(name) is listed twice") }
            guard channels.contains(release.channel) else {
                throw fault("\(name) is on the channel \(quoted(release.channel)), which \"channels\" does not list")
            }
            guard (try? ArchiveName(release.archive)) != nil else {
                throw fault(
                    "\(name) names the archive \(quoted(release.archive)), which is not a .zip, .tar, .tar.gz or .tar.bz2 file name")
            }
            guard Self.isSafeRelativePath(release.path), release.path.split(separator: "/").last.map(String.init) == release.archive else {
                throw fault(
                    "\(name) has the path \(quoted(release.path)); it must be a relative path under the update URL ending in its archive's name"
                )
            }
            guard release.size >= 0, release.unpacked >= 0 else { throw fault("\(name) has a negative size") }
            guard Self.isHex(release.sha256, length: 64), Self.isHex(release.blake2b, length: 128) else {
                throw fault("\(name) has a SHA-256 or BLAKE2b that is not lowercase hex of the right length")
            }
            guard release.rollout.isFinite, (0...100).contains(release.rollout) else {
                throw fault("\(name) has a rollout of \(release.rollout), outside 0 to 100")
            }
            if let manifest = release.manifest {
                guard Self.isSafeRelativePath(manifest.path), (0...Int64(ReleaseManifest.maximumBytes)).contains(manifest.size),
                    Self.isHex(manifest.sha256, length: 64)
                else {
                    throw fault(
                        "\(name) has a manifest reference with an unsafe path, a size outside 0 to \(ReleaseManifest.maximumBytes) or a SHA-256 that is not lowercase hex"
                    )
                }
            }
        }
    }

    /// Whether `name` can be a channel: 1 to 64 of a-z, 0-9, `.`, `_` and `-`.
    public static func isValidChannel(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
    }

    /// Relative, `/`-separated, no empty, `.` or `..` component, and only characters that need no
    /// escaping in a URL path.
    static func isSafeRelativePath(_ path: String) -> Bool {
        let components = path.split(separator: "/", omittingEmptySubsequences: false)
        return !path.isEmpty && path.utf8.count <= 1024
            && components.allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
            && path.utf8.allSatisfy { byte in
                (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
                    || "._-+~/!".utf8.contains(byte)
            }
    }

    static func isHex(_ text: String, length: Int) -> Bool {
        text.utf8.count == length && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle())
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return keys.isEmpty ? "the top level" : String(keys.drop(while: { $0 == "." }))
        }
        switch error {
        case .keyNotFound(let key, let context): return "\(path(context)) has no \(quoted(key.stringValue))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context): return "\(path(context)) has the wrong type"
        case .dataCorrupted(let context): return "\(path(context)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

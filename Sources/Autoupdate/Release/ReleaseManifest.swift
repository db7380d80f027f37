#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `releases/V/manifest.json`: every entry of a release's archive, with its type, mode, size,
/// SHA-256 and link target, written by `autoupdate publish` beside the archive.
///
/// ```json
/// { "schema": 1, "version": "2.0", "archive": "project.zip",
///   "files": [{ "path": "bin", "type": "directory", "mode": "0755" },
///             { "path": "bin/app", "type": "file", "mode": "0755", "size": 4242, "sha256": "…" },
///             { "path": "current", "type": "symlink", "mode": "0777", "target": "bin/app" }] }
/// ```
///
/// The release index names it with its size and SHA-256 (``ReleaseIndex/ManifestReference``),
/// so a signed index vouches for it; ``decode(_:matching:source:)`` refuses one that differs.
public struct ReleaseManifest: Sendable, Hashable, Codable {
    /// The schema this autoupdate writes and reads: 1.
    public static let currentSchema = 1
    /// The largest manifest a client reads: 64 MiB.
    public static let maximumBytes = 64 << 20

    public var schema: Int
    /// The release it describes.
    public var version: Version
    /// The archive's file name.
    public var archive: String
    /// Every entry of the archive, in archive order.
    public var files: [Entry]
    /// A `.tar.gz` or `.tar.bz2`: its independent members (gzip members, bzip2 streams), which
    /// start at entry boundaries, in order.
    public var members: [Member]?

    public init(version: Version, archive: String, files: [Entry], members: [Member]? = nil) {
        self.schema = Self.currentSchema
        self.version = version
        self.archive = archive
        self.files = files
        self.members = members
    }

    /// One gzip member or bzip2 stream of a compressed tar: a unit a client can fetch with one
    /// Range request and decode on its own into whole tar entries.
    public struct Member: Sendable, Hashable, Codable {
        /// Where it starts in the archive, and how many compressed bytes it takes.
        public var offset: Int64
        public var size: Int64
        /// The tar bytes it decodes to.
        public var unpacked: Int64

        public init(offset: Int64, size: Int64, unpacked: Int64) {
            self.offset = offset
            self.size = size
            self.unpacked = unpacked
        }
    }

    /// One entry of a release's archive.
    public struct Entry: Sendable, Hashable, Codable {
        /// `file`, `directory` or `symlink`.
        public enum Kind: String, Sendable, Hashable, Codable {
            case file, directory, symlink
        }

        /// Relative path with `/` separators.
        public var path: String
        public var type: Kind
        /// Permission bits in octal (`0755`).
        public var mode: String
        /// Files: the length in bytes.
        public var size: Int64?
        /// Files: SHA-256 of the content, lowercase hex.
        public var sha256: String?
        /// Symlinks: the target.
        public var target: String?
        /// A zip or plain tar: where the entry's bytes start in the archive (its local or tar
        /// header), and how many bytes the headers and the data take.
        public var offset: Int64?
        public var length: Int64?
        /// A compressed tar: the index in ``ReleaseManifest/members`` of the member holding it.
        public var member: Int?

        public init(
            path: String, type: Kind, mode: UInt32, size: Int64? = nil, sha256: String? = nil, target: String? = nil,
            offset: Int64? = nil, length: Int64? = nil, member: Int? = nil
        ) {
            self.path = path
            self.type = type
            self.mode = "0" + String(mode & 0o7777, radix: 8)
            self.size = size
            self.sha256 = sha256
            self.target = target
            self.offset = offset
            self.length = length
            self.member = member
        }

        /// The permission bits, when `mode` is octal within 0–07777.
        public var permissions: UInt32? {
            UInt32(mode, radix: 8).flatMap { $0 <= 0o7777 ? $0 : nil }
        }
    }

    private enum CodingKeys: String, CodingKey {
        case schema, version, archive, files, members
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        schema = try container.decode(Int.self, forKey: .schema)
        version = try Version(container.decode(String.self, forKey: .version))
        archive = try container.decode(String.self, forKey: .archive)
        files = try container.decode([Entry].self, forKey: .files)
        members = try container.decodeIfPresent([Member].self, forKey: .members)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(schema, forKey: .schema)
        try container.encode(version.description, forKey: .version)
        try container.encode(archive, forKey: .archive)
        try container.encode(files, forKey: .files)
        try container.encodeIfPresent(members, forKey: .members)
    }

    /// The manifest as the server serves it: JSON with sorted keys and a final newline.
    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self)) + [UInt8(ascii: "\n")]
    }

    /// Reads and checks a manifest: its size and SHA-256 against the index's reference, its
    /// schema, and every entry (a relative path without `.` or `..`, a type, an octal mode, and
    /// a size and digest for files, a target for symlinks).
    ///
    /// - Parameters:
    ///   - bytes: The manifest as served.
    ///   - reference: What the release index says it is; `nil` checks the content only.
    ///   - source: Names the manifest in messages.
    /// - Throws: ``AutoupdateError`` `.checksumMismatch` for bytes that are not the ones the index
    ///   names, `.corruptedFile` naming the field at fault.
    public static func decode(
        _ bytes: [UInt8], matching reference: ReleaseIndex.ManifestReference? = nil, source: String = "manifest.json"
    ) throws -> ReleaseManifest {
        let fault = { (reason: String) in AutoupdateError(.corruptedFile, "\(source) is not a valid release manifest: \(reason)") }
        guard bytes.count <= maximumBytes else { throw fault("it is larger than \(maximumBytes) bytes") }
        if let reference {
            let digest = try SHA256Digest()
            bytes.withUnsafeBytes { digest.update($0) }
            let actual = digest.finalize()
            guard Int64(bytes.count) == reference.size, actual == reference.sha256 else {
                throw AutoupdateError(
                    .checksumMismatch,
                    "\(source) is \(bytes.count) bytes with SHA-256 \(actual); the release index says \(reference.size) bytes with \(reference.sha256)"
                )
            }
        }
        let manifest: ReleaseManifest
        do {
            manifest = try JSONDecoder().decode(ReleaseManifest.self, from: Data(bytes))
        } catch let error as AutoupdateError {
            throw fault(error.message)
        } catch let error as DecodingError {
            throw fault(ReleaseIndex.describe(error))
        } catch {
            throw fault("it is not JSON")
        }
        guard manifest.schema == currentSchema else {
            throw fault("its schema is \(manifest.schema), and this autoupdate reads schema \(currentSchema) (update autoupdate)")
        }
        var seen: Set<String> = []
        for entry in manifest.files {
            let components = entry.path.split(separator: "/", omittingEmptySubsequences: false)
            guard !entry.path.isEmpty, !entry.path.utf8.contains(0), components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." })
            else {
                throw fault("the entry \(quoted(entry.path)) is not a relative path without empty, '.' or '..' components")
            }
            guard seen.insert(entry.path).inserted else { throw fault("the entry \(quoted(entry.path)) is listed twice") }
            guard entry.permissions != nil else { throw fault("the entry \(quoted(entry.path)) has the mode \(quoted(entry.mode))") }
            switch entry.type {
            case .file:
                guard let size = entry.size, size >= 0, let sha256 = entry.sha256, ReleaseIndex.isHex(sha256, length: 64) else {
                    throw fault("the file \(quoted(entry.path)) needs a size and a lowercase hex SHA-256")
                }
            case .symlink:
                guard let target = entry.target, !target.isEmpty else { throw fault("the symlink \(quoted(entry.path)) has no target") }
            case .directory:
                break
            }
            if let offset = entry.offset, let length = entry.length {
                guard offset >= 0, length > 0 else {
                    throw fault("the entry \(quoted(entry.path)) has a negative offset or an empty range")
                }
            }
            if let member = entry.member {
                guard let members = manifest.members, members.indices.contains(member) else {
                    throw fault("the entry \(quoted(entry.path)) names member \(member), which the manifest does not list")
                }
            }
        }
        var end: Int64 = 0
        for (index, member) in (manifest.members ?? []).enumerated() {
            guard member.offset == end, member.size > 0, member.unpacked > 0 else {
                throw fault("member \(index) does not start where the one before ends, or is empty")
            }
            end = member.offset + member.size
        }
        return manifest
    }
}

extension ReleaseManifest {
    /// Every folder the manifest lists, with its permission bits (755 when its mode is unreadable).
    var folderModes: [String: UInt32] {
        var modes: [String: UInt32] = [:]
        for entry in files where entry.type == .directory {
            modes[entry.path] = entry.permissions ?? 0o755
        }
        return modes
    }
}

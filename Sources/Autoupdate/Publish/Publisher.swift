#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Turns a folder into what a static HTTPS server serves for autoupdate clients: the release
/// index `release.json`, every release's archive under `releases/V/`, and, for clients that read
/// `version.txt` only (pyautoupdate), `version.txt` with the newest stable release's archive
/// beside it.
///
/// ```swift
/// let published = try Publisher.publish(source: "build/myapp", version: try Version("2.0"), to: "/var/www/myapp")
/// print(published.archive, published.sha256)
/// ```
///
/// Every file is written under a temporary name and flushed before any is renamed into place,
/// the archive first and `version.txt` last: a client polling during a publish sees the old
/// version or the complete new one, and a publish that fails (a full disk, an unreadable source
/// file) leaves the server folder exactly as it was. The layout's own files (`version.txt`,
/// `filelist.txt`, …) are left out of the archive, and what clients would refuse (symlinks
/// leaving the folder, devices, FIFOs) is refused here first.
public enum Publisher {
    /// What was published.
    public struct Result: Sendable {
        /// The archive's path.
        public let archive: String
        public let version: Version
        /// Files, folders and symlinks in the archive.
        public let entries: Int
        /// The archive's size in bytes.
        public let bytes: Int64
        /// SHA-256 of the archive, hex.
        public let sha256: String
        /// The archive's signature file, when a secret key was given.
        public let signature: String?
        /// `version.txt.minisig`, when an expiry was given.
        public let versionSignature: String?
        /// The app identity the signatures name (`nil` without a secret key or an app).
        public let app: String?
        /// The index as written (`nil` for a publish without one).
        public var index: ReleaseIndex? = nil
        /// The version `version.txt` announces now: the newest stable release fully rolled out
        /// (`nil` when none is).
        public var announced: Version? = nil
    }

    /// Publishes `source` as `version` into `output`.
    ///
    /// - Parameters:
    ///   - source: The folder holding the app's files, as they should be installed.
    ///   - version: The version to announce.
    ///   - output: The server folder (created if missing).
    ///   - archive: The archive's name; `.zip`, `.tar.gz` or `.tar.bz2` choose the format.
    ///   - layout: The layout whose file names are left out of the archive.
    ///   - secretKey: Signs the archive: `ARCHIVE.minisig`, whose trusted comment binds the
    ///     version and the archive's name (see ``ReleaseComment``). Without it, a stale
    ///     `ARCHIVE.minisig` is removed.
    ///   - versionExpiresIn: With `secretKey`, also signs `version.txt` (`version.txt.minisig`),
    ///     trusted until this long from now: for clients that require freshness.
    ///   - app: The app identity the signatures bind (see ``TrustPolicy/app``): with one key for
    ///     several apps, a client then refuses another app's release. `nil` binds none.
    ///   - release: The release's channel, rollout, minimum version, required flag and notes in
    ///     the index, or ``ReleaseOptions/withoutIndex`` for the `version.txt`-only layout.
    /// - Throws: ``AutoupdateError`` (`.invalidArgument` for what clients would refuse or a
    ///   version already published, `.fileSystem` naming the file that could not be read or
    ///   written); the server folder is then as it was.
    public static func publish(
        source: String, version: Version, to output: String, archive: ArchiveName = .default, layout: AppLayout = AppLayout(),
        secretKey: Minisign.SecretKey? = nil, versionExpiresIn: Duration? = nil, app: String? = nil,
        release: ReleaseOptions = ReleaseOptions()
    ) throws -> Result {
        if versionExpiresIn != nil, secretKey == nil {
            throw AutoupdateError(.invalidArgument, "signing version.txt with an expiry needs a secret key")
        }
        if let app {
            try ReleaseComment.validate(app: app)
        }
        let tree = try SourceTree(root: source, skipping: layout.reservedNames)
        if release.writesIndex {
            return try publishIndexed(
                tree, version: version, to: output, archive: archive, secretKey: secretKey, versionExpiresIn: versionExpiresIn, app: app,
                options: release)
        }
        // Everything is written and flushed under temporary names first; only then does the
        // folder change, in order: archive, its signature, version.txt, its signature.
        let update = try ServerFolderUpdate(folder: output)
        let staged = try update.stage(archive.name) { handle in
            _ = try write(tree, as: archive.format, to: handle)
        }
        let (bytes, sha256) = try hash(staged)
        let signaturePath = output + "/" + archive.name + ".minisig"
        if let secretKey {
            let signature = try Minisign.sign(
                prehash: try Minisign.prehash(ofFile: staged), with: secretKey,
                trustedComment: ReleaseComment.make(
                    file: archive.name, version: version, app: app, size: bytes, unpacked: tree.unpackedBytes))
            try update.stage(archive.name + ".minisig", bytes: Array(signature.fileText.utf8))
        } else {
            update.remove(archive.name + ".minisig")
        }
        let versionText = Array((version.description + "\n").utf8)
        try update.stage("version.txt", bytes: versionText)
        var versionSignature: String?
        if let secretKey, let versionExpiresIn {
            try update.stage(
                "version.txt.minisig", bytes: versionSignatureText(versionText, with: secretKey, expiresIn: versionExpiresIn, app: app))
            versionSignature = output + "/version.txt.minisig"
        }
        try update.commit()
        return Result(
            archive: output + "/" + archive.name, version: version, entries: tree.entries.count, bytes: bytes, sha256: sha256,
            signature: secretKey == nil ? nil : signaturePath, versionSignature: versionSignature, app: secretKey == nil ? nil : app)
    }

    /// Signs the server folder's `version.txt` (and `release.json`, when there is one) again,
    /// trusted until `expiresIn` from now: what a publisher's CI runs on a schedule for clients
    /// that require freshness.
    ///
    /// - Parameters:
    ///   - output: The server folder, holding `version.txt`.
    ///   - secretKey: The key that signed the release.
    ///   - expiresIn: How long from now the signature vouches for `version.txt` being current.
    ///   - app: The app identity to bind, as at publish.
    /// - Returns: The path of `version.txt.minisig`.
    @discardableResult
    public static func signVersion(
        in output: String, with secretKey: Minisign.SecretKey, expiresIn: Duration, app: String? = nil
    ) throws -> String {
        if let app {
            try ReleaseComment.validate(app: app)
        }
        let path = output + "/version.txt"
        guard let text = FileManager.default.contents(atPath: path) else {
            throw AutoupdateError(.fileSystem, "cannot read \(quoted(path)): publish a version first")
        }
        try AtomicFile.write(
            try versionSignatureText([UInt8](text), with: secretKey, expiresIn: expiresIn, app: app), to: path + ".minisig")
        // The index is the server's word too: its signature gets the same expiry.
        if let index = try readIndex(in: output), let bytes = FileManager.default.contents(atPath: output + "/" + indexName) {
            try AtomicFile.write(
                try indexSignatureText(Array(bytes), serial: index.serial, with: secretKey, expiresIn: expiresIn, app: app),
                to: output + "/" + indexName + ".minisig")
        }
        return path + ".minisig"
    }

    /// `version.txt.minisig` for `text`: signed now, trusted until `expiresIn` from now.
    static func versionSignatureText(
        _ text: [UInt8], with secretKey: Minisign.SecretKey, expiresIn: Duration, app: String?
    ) throws -> [UInt8] {
        let now = Date()
        let signature = try Minisign.sign(
            prehash: Minisign.blake2b(text, length: 64), with: secretKey,
            trustedComment: ReleaseComment.make(
                file: "version.txt", timestamp: now, expires: now.addingTimeInterval(expiresIn.timeInterval), app: app))
        return Array(signature.fileText.utf8)
    }

    /// Writes the archive and says where each entry went.
    @discardableResult
    static func write(_ tree: SourceTree, as format: ArchiveFormat, to handle: OpenFile) throws -> ArchiveLayout {
        var layout = ArchiveLayout()
        switch format {
        case .zip:
            let writer = try ZipWriter(handle: handle)
            for entry in tree.entries {
                let (offset, length) = try writer.add(entry, root: tree.root)
                layout.locations.append(.range(offset: offset, length: length))
            }
            try writer.finish()
        case .tar:
            var offset: Int64 = 0
            let writer = TarWriter { bytes in
                try handle.write(contentsOf: Data(bytes))
                offset += Int64(bytes.count)
            }
            for entry in tree.entries {
                let start = offset
                try writer.write(entry, root: tree.root)
                layout.locations.append(.range(offset: start, length: offset - start))
            }
            try writer.finish()
        case .tarGzip, .tarBzip2:
            let compressor = try SeekableCompressor(format: format) { try handle.write(contentsOf: Data($0)) }
            let writer = TarWriter { try compressor.write($0) }
            for entry in tree.entries {
                let large: Bool = if case .file(let size) = entry.kind { size >= compressor.threshold } else { false }
                if large {
                    try compressor.endMember()
                }
                layout.locations.append(.member(compressor.currentMember))
                try writer.write(entry, root: tree.root)
                if large || compressor.pending >= compressor.threshold {
                    try compressor.endMember()
                }
            }
            try writer.finish()
            try compressor.endMember()
            layout.members = compressor.members
        }
        return layout
    }

    /// The size and SHA-256 of a file.
    static func hash(_ path: String) throws -> (Int64, String) {
        guard let handle = OpenFile(forReadingAtPath: path) else {
            throw AutoupdateError.unreadable(path)
        }
        defer { try? handle.close() }
        let digest = try SHA256Digest()
        var bytes: Int64 = 0
        while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty {
            data.withUnsafeBytes { digest.update($0) }
            bytes += Int64(data.count)
        }
        return (bytes, digest.finalize())
    }
}

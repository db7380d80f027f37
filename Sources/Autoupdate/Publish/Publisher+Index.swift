#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What a publish records about the release in `release.json`.
public struct ReleaseOptions: Sendable, Hashable {
    /// The channel (`stable` by default); a channel the index does not list yet is added as its
    /// least stable one.
    public var channel: String
    /// The percentage of installs it is offered to, 0 to 100.
    public var rollout: Double
    /// Installs below this version must update.
    public var minimumVersion: Version?
    /// No install skips this release.
    public var required: Bool
    /// The release notes.
    public var notes: String?
    /// Whether to write the index at all; `false` writes only `version.txt` and the archive, as
    /// autoupdate 0.1 and pyautoupdate's docs do.
    public var writesIndex: Bool

    public init(
        channel: String = "stable", rollout: Double = 100, minimumVersion: Version? = nil, required: Bool = false, notes: String? = nil,
        writesIndex: Bool = true
    ) {
        self.channel = channel
        self.rollout = rollout
        self.minimumVersion = minimumVersion
        self.required = required
        self.notes = notes
        self.writesIndex = writesIndex
    }

    /// The `version.txt`-only layout, without `release.json`.
    public static let withoutIndex = ReleaseOptions(writesIndex: false)
}

extension Publisher {
    /// The index file's name in the server folder.
    public static let indexName = "release.json"

    /// Changes a published release's rollout percentage (0 halts it) without republishing.
    ///
    /// - Returns: The index as written.
    @discardableResult
    public static func setRollout(
        of version: Version, to percent: Double, in output: String, secretKey: Minisign.SecretKey? = nil,
        versionExpiresIn: Duration? = nil, app: String? = nil
    ) throws -> ReleaseIndex {
        try validateRollout(percent)
        return try changeIndex(in: output, secretKey: secretKey, versionExpiresIn: versionExpiresIn, app: app) { index in
            let position = try releasePosition(of: version, in: index, output: output)
            index.releases[position].rollout = percent
        }
    }

    /// Pulls a bad release: clients never install it, and those running it move to the newest
    /// release still offered (with a signed index). Its archive stays, for the record.
    ///
    /// - Returns: The index as written.
    @discardableResult
    public static func yank(
        _ version: Version, reason: String? = nil, in output: String, secretKey: Minisign.SecretKey? = nil,
        versionExpiresIn: Duration? = nil, app: String? = nil
    ) throws -> ReleaseIndex {
        try changeIndex(in: output, secretKey: secretKey, versionExpiresIn: versionExpiresIn, app: app) { index in
            let position = try releasePosition(of: version, in: index, output: output)
            index.releases[position].yanked = true
            index.releases[position].yankReason = reason
        }
    }

    /// Reads the server folder's index; `nil` when there is none.
    public static func readIndex(in output: String) throws -> ReleaseIndex? {
        let path = output + "/" + indexName
        guard let data = FileManager.default.contents(atPath: path) else {
            if FileManager.default.fileExists(atPath: path) { throw AutoupdateError.unreadable(path) }
            return nil
        }
        return try ReleaseIndex.decode(Array(data), source: path)
    }

    // MARK: Publishing into the index

    static func publishIndexed(
        _ tree: SourceTree, version: Version, to output: String, archive: ArchiveName, secretKey: Minisign.SecretKey?,
        versionExpiresIn: Duration?, app: String?, options: ReleaseOptions
    ) throws -> Result {
        var index = try readIndex(in: output) ?? ReleaseIndex(serial: 0)
        try checkSigningContinues(in: output, secretKey: secretKey)
        guard index.release(version) == nil else {
            throw AutoupdateError(
                .invalidArgument,
                "\(version) is already published in \(quoted(output + "/" + indexName)); a published release never changes (publish a new version, or yank this one)"
            )
        }
        guard ReleaseIndex.isValidChannel(options.channel) else {
            throw AutoupdateError(.invalidArgument, "the channel \(quoted(options.channel)) must be 1 to 64 of a-z, 0-9, '.', '_' and '-'")
        }
        try validateRollout(options.rollout)
        if !index.channels.contains(options.channel) {
            index.channels.append(options.channel)
        }

        // The release's own folder first: its archive is in place before any index names it.
        let releasePath = "releases/\(version)/\(archive.name)"
        let folderUpdate = try ServerFolderUpdate(folder: output + "/releases/\(version)")
        var layout = ArchiveLayout()
        let staged = try folderUpdate.stage(archive.name) { handle in
            layout = try write(tree, as: archive.format, to: handle)
        }
        let (bytes, sha256) = try hash(staged)
        let prehash = try Minisign.prehash(ofFile: staged)
        if let secretKey {
            let signature = try Minisign.sign(
                prehash: prehash, with: secretKey,
                trustedComment: ReleaseComment.make(
                    file: archive.name, version: version, app: app, size: bytes, unpacked: tree.unpackedBytes))
            try folderUpdate.stage(archive.name + ".minisig", bytes: Array(signature.fileText.utf8))
        } else {
            folderUpdate.remove(archive.name + ".minisig")
        }
        let manifestBytes = try ReleaseManifest(
            version: version, archive: archive.name, files: try manifest(of: tree, layout: layout),
            members: layout.members.isEmpty ? nil : layout.members
        ).encoded()
        try folderUpdate.stage(manifestName, bytes: manifestBytes)
        try folderUpdate.commit()
        let manifestDigest = try SHA256Digest()
        manifestBytes.withUnsafeBytes { manifestDigest.update($0) }

        index.releases.append(
            ReleaseIndex.Release(
                version: version, channel: options.channel, archive: archive.name, path: releasePath, size: bytes,
                unpacked: tree.unpackedBytes, sha256: sha256, blake2b: Minisign.hex(prehash), notes: options.notes,
                rollout: options.rollout, minimumVersion: options.minimumVersion, required: options.required,
                manifest: ReleaseIndex.ManifestReference(
                    path: "releases/\(version)/\(manifestName)", size: Int64(manifestBytes.count), sha256: manifestDigest.finalize())))
        let (written, announced) = try commit(index, in: output, secretKey: secretKey, versionExpiresIn: versionExpiresIn, app: app)
        var result = Result(
            archive: output + "/" + releasePath, version: version, entries: tree.entries.count, bytes: bytes, sha256: sha256,
            signature: secretKey == nil ? nil : output + "/" + releasePath + ".minisig",
            versionSignature: secretKey != nil && versionExpiresIn != nil && announced != nil ? output + "/version.txt.minisig" : nil,
            app: secretKey == nil ? nil : app)
        result.index = written
        result.announced = announced
        return result
    }

    /// The file name of a release's manifest, beside its archive.
    public static let manifestName = "manifest.json"

    /// Every entry of the tree with its type, mode, size, SHA-256 and place in the archive: the
    /// release's file manifest.
    static func manifest(of tree: SourceTree, layout: ArchiveLayout) throws -> [ReleaseManifest.Entry] {
        try zip(tree.entries, layout.locations).map { entry, location in
            var described = try describe(entry, root: tree.root)
            switch location {
            case .range(let offset, let length):
                (described.offset, described.length) = (offset, length)
            case .member(let member):
                described.member = member
            }
            return described
        }
    }

    private static func describe(_ entry: SourceTree.Entry, root: String) throws -> ReleaseManifest.Entry {
        switch entry.kind {
        case .directory:
            return ReleaseManifest.Entry(path: entry.path, type: .directory, mode: entry.mode)
        case .symlink(let target):
            return ReleaseManifest.Entry(path: entry.path, type: .symlink, mode: entry.mode, target: target)
        case .file:
            let (size, sha256) = try hash(root + "/" + entry.path)
            return ReleaseManifest.Entry(path: entry.path, type: .file, mode: entry.mode, size: size, sha256: sha256)
        }
    }

    // MARK: Writing the index

    private static func changeIndex(
        in output: String, secretKey: Minisign.SecretKey?, versionExpiresIn: Duration?, app: String?,
        _ change: (inout ReleaseIndex) throws -> Void
    ) throws -> ReleaseIndex {
        if let app {
            try ReleaseComment.validate(app: app)
        }
        if versionExpiresIn != nil, secretKey == nil {
            throw AutoupdateError(.invalidArgument, "signing with an expiry needs a secret key")
        }
        guard var index = try readIndex(in: output) else {
            throw AutoupdateError(
                .invalidArgument, "\(quoted(output)) has no \(indexName): publish a release there first (autoupdate publish)")
        }
        try checkSigningContinues(in: output, secretKey: secretKey)
        try change(&index)
        return try commit(index, in: output, secretKey: secretKey, versionExpiresIn: versionExpiresIn, app: app).index
    }

    /// Writes `index` with the next serial, its signature, and the top level that `version.txt`
    /// clients read: the archive before the index, the index before `version.txt`.
    private static func commit(
        _ index: ReleaseIndex, in output: String, secretKey: Minisign.SecretKey?, versionExpiresIn: Duration?, app: String?
    ) throws -> (index: ReleaseIndex, announced: Version?) {
        var index = index
        let now = Date()
        // Time-based, so that a folder rebuilt from scratch still moves past what clients saw.
        guard index.serial < UInt64.max else {
            throw AutoupdateError(.invalidArgument, "\(quoted(output + "/" + indexName)) has the largest serial there is; it cannot grow")
        }
        index.serial = max(index.serial + 1, UInt64(max(0, now.timeIntervalSince1970)))
        index.generated = ReleaseIndex.timestamp(now)
        let update = try ServerFolderUpdate(folder: output)
        let versionPath = output + "/version.txt"
        let currentText = FileManager.default.contents(atPath: versionPath).map { String(decoding: $0, as: UTF8.self) }
        let top = index.releases
            .filter { $0.channel == index.channels[0] && !$0.yanked && $0.rollout >= 100 }
            .max { $0.version < $1.version }
        var versionText: [UInt8]?
        if let top {
            let text = top.version.description + "\n"
            if currentText != text || !FileManager.default.fileExists(atPath: output + "/" + top.archive) {
                try update.stage(top.archive, sameAs: output + "/" + top.path)
                if FileManager.default.fileExists(atPath: output + "/" + top.path + ".minisig") {
                    try update.stage(top.archive + ".minisig", sameAs: output + "/" + top.path + ".minisig")
                } else {
                    update.remove(top.archive + ".minisig")
                }
                versionText = Array(text.utf8)
            }
        } else if let currentText, let current = try? Version(currentText), index.release(current)?.yanked == true {
            // A yanked release must not stay announced to clients that read version.txt only.
            let yanked = index.release(current)!
            update.remove(yanked.archive)
            update.remove(yanked.archive + ".minisig")
            update.remove("version.txt.minisig")
            update.remove("version.txt")
        }
        let encoded = try index.encoded()
        try update.stage(indexName, bytes: encoded)
        if let secretKey {
            try update.stage(
                indexName + ".minisig",
                bytes: try indexSignatureText(encoded, serial: index.serial, with: secretKey, expiresIn: versionExpiresIn, app: app))
        } else {
            update.remove(indexName + ".minisig")
        }
        if let versionText {
            try update.stage("version.txt", bytes: versionText)
        }
        if let secretKey, let versionExpiresIn, let top {
            try update.stage(
                "version.txt.minisig",
                bytes: versionSignatureText(
                    versionText ?? Array((top.version.description + "\n").utf8), with: secretKey, expiresIn: versionExpiresIn, app: app))
        }
        try update.commit()
        return (index, top?.version)
    }

    /// `release.json.minisig`: the index's bytes, its serial, and (for clients that require
    /// freshness) an expiry.
    static func indexSignatureText(
        _ bytes: [UInt8], serial: UInt64, with secretKey: Minisign.SecretKey, expiresIn: Duration?, app: String?
    ) throws -> [UInt8] {
        let now = Date()
        let signature = try Minisign.sign(
            prehash: Minisign.blake2b(bytes, length: 64), with: secretKey,
            trustedComment: ReleaseComment.make(
                file: indexName, timestamp: now, expires: expiresIn.map { now.addingTimeInterval($0.timeInterval) }, app: app,
                serial: serial))
        return Array(signature.fileText.utf8)
    }

    /// An index that was signed stays signed: a change without the key would leave clients that
    /// pin it refusing every new index.
    private static func checkSigningContinues(in output: String, secretKey: Minisign.SecretKey?) throws {
        if secretKey == nil, FileManager.default.fileExists(atPath: output + "/" + indexName + ".minisig") {
            throw AutoupdateError(
                .invalidArgument,
                "\(quoted(output + "/" + indexName)) is signed; pass --secret-key, or clients that pin the public key refuse the new index")
        }
    }

    private static func releasePosition(of version: Version, in index: ReleaseIndex, output: String) throws -> Int {
        guard let position = index.releases.firstIndex(where: { $0.version == version }) else {
            let offered = index.releases.map(\.version.description).joined(separator: ", ")
            throw AutoupdateError(
                .invalidArgument,
                "\(version) is not in \(quoted(output + "/" + indexName)) (it offers \(offered.isEmpty ? "no release" : offered))")
        }
        return position
    }

    private static func validateRollout(_ percent: Double) throws {
        guard percent.isFinite, (0...100).contains(percent) else {
            throw AutoupdateError(.invalidArgument, "a rollout is a percentage from 0 to 100, not \(percent)")
        }
    }
}

import ArgumentParser
import Autoupdate
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Add a release to what a static HTTPS server serves: its archive, release.json and version.txt.",
        discussion: """
            The archive goes to OUT/releases/VERSION/ and the release into OUT/release.json (the \
            index of every release still offered, with a serial that only grows); version.txt and \
            the top-level archive serve the newest stable release that is fully rolled out, for \
            clients that read version.txt only. The archive's format follows its name (.zip, \
            .tar.gz, .tar.bz2). Every file is written and flushed under a temporary name before \
            any is renamed into place, the archive first, the index next and version.txt last, so \
            clients never see a version whose archive is incomplete, and a publish that fails \
            leaves OUT as it was. A published version never changes: publish a new one, or yank \
            it. Upload OUT to any static HTTPS host.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The folder holding the app's files, as they should be installed.")
    var source: String

    @Option(help: "The version to publish (PEP 440).")
    var version: String

    @Option(help: "The server folder to write (created if missing).")
    var out: String

    @Option(help: "The archive's name: .zip, .tar.gz or .tar.bz2.")
    var archive: String = ArchiveName.default.name

    @Option(help: "Sign the archive with this minisign secret key (ARCHIVE.minisig, binding the version and the archive's name).")
    var secretKey: String?

    @Option(
        help:
            "With --secret-key: also sign version.txt (version.txt.minisig), trusted for this many seconds, for clients that require freshness."
    )
    var expiresIn: Double?

    @Option(
        help:
            "With --secret-key: the app the signatures are for. Clients refuse another app's releases (with one key for several apps, give each its name); they expect their URL's last path component unless given --app."
    )
    var app: String?

    @Option(help: "The release channel: stable (default), beta, alpha, or a new one (added as the least stable).")
    var channel: String = "stable"

    @Option(help: "Offer the release to this percentage of installs (0 to 100; raise it later with 'autoupdate rollout').")
    var rollout: Double = 100

    @Option(help: "Installs below this version must update: they cannot decline or defer it.")
    var minimumVersion: String?

    @Flag(help: "No install skips this release: those below it install it before anything newer.")
    var required = false

    @Option(help: "A text file with the release notes.")
    var notes: String?

    @Flag(help: "Write only version.txt and the archive, without release.json (the autoupdate 0.1 layout).")
    var noIndex = false

    func validate() throws {
        if noIndex, channel != "stable" || rollout != 100 || minimumVersion != nil || required || notes != nil {
            throw ValidationError(
                "--no-index writes no release.json; --channel, --rollout, --minimum-version, --required and --notes need it.")
        }
        if !(rollout.isFinite && (0...100).contains(rollout)) {
            throw ValidationError("--rollout must be a percentage from 0 to 100.")
        }
        if expiresIn != nil, secretKey == nil {
            throw ValidationError("--expires-in needs --secret-key.")
        }
        if app != nil, secretKey == nil {
            throw ValidationError("--app names the app in signatures; it needs --secret-key.")
        }
        if let expiresIn, !(expiresIn > 0 && expiresIn.isFinite) {
            throw ValidationError("--expires-in must be a positive number of seconds.")
        }
    }

    func run() async throws {
        global.bootstrapLogging()
        try await Failure.reporting {
            let options =
                noIndex
                ? ReleaseOptions.withoutIndex
                : ReleaseOptions(
                    channel: channel, rollout: rollout, minimumVersion: try minimumVersion.map(Version.init), required: required,
                    notes: try notes.map(readNotes))
            let result = try Publisher.publish(
                source: source, version: try Version(version), to: out, archive: try ArchiveName(archive),
                secretKey: try secretKey.map(Minisign.SecretKey.init(file:)),
                versionExpiresIn: expiresIn.map { .milliseconds(Int64($0 * 1000)) },
                app: app, release: options)
            let summary =
                "\(count(result.entries, "entry", plural: "entries")), \(ProgressDisplay.bytes(result.bytes)), sha256 \(result.sha256)"
            if let index = result.index {
                print("published \(result.version) on \(channel) at \(plainNumber(rollout))%: \(result.archive) (\(summary))")
                print("\(out)/release.json: serial \(index.serial), \(count(index.releases.count, "release", plural: "releases"))")
                print("\(out)/version.txt: \(result.announced.map { "announces \($0)" } ?? "no stable release fully rolled out yet")")
            } else {
                print("published \(result.version): \(result.archive) (\(summary)) and \(out)/version.txt")
            }
            if let signature = result.signature {
                let signatures =
                    [signature] + (result.index == nil ? [] : ["\(out)/release.json.minisig"]) + [result.versionSignature].compactMap { $0 }
                let listed =
                    signatures.count == 1 ? signatures[0] : signatures.dropLast().joined(separator: ", ") + " and " + signatures.last!
                print("signed\(result.app.map { " for app '\($0)'" } ?? ""): \(listed)")
            }
        }
    }

    private func readNotes(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AutoupdateError(.fileSystem, "cannot read the release notes \(path)")
        }
        guard data.count <= 1 << 20 else {
            throw AutoupdateError(.invalidArgument, "the release notes \(path) are larger than 1 MiB")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

struct RolloutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "Change a published release's rollout percentage (0 halts it) without republishing.",
        discussion: """
            Installs are drawn by a hash of their install id and the version, so raising the \
            percentage keeps every install that already had the release. Rewrites release.json \
            (a new serial) and, when the release becomes the newest stable one fully rolled out, \
            version.txt and the top-level archive.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The published version.")
    var version: String

    @Argument(help: "The percentage of installs to offer it to, 0 to 100.")
    var percent: Double

    @OptionGroup var index: IndexSigningOptions

    func validate() throws {
        if !(percent.isFinite && (0...100).contains(percent)) {
            throw ValidationError("the percentage must be from 0 to 100.")
        }
    }

    func run() async throws {
        global.bootstrapLogging()
        try await Failure.reporting {
            let written = try Publisher.setRollout(
                of: try Version(version), to: percent, in: index.out, secretKey: try index.secretKeyValue(),
                versionExpiresIn: index.expiry, app: index.app)
            print("\(version) now rolls out to \(plainNumber(percent))% of installs; \(index.out)/release.json: serial \(written.serial)")
        }
    }
}

struct YankCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "yank",
        abstract: "Pull a bad release: never installed again, and installs running it move off it.",
        discussion: """
            Clients skip a yanked version. Those running it move to the newest release still \
            offered to them, even a lower one, when they pin a public key and the signed index \
            is not older than any they have seen; without a key, a yank only stops new installs. \
            The archive stays under releases/ for the record.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The published version to pull.")
    var version: String

    @Option(help: "Why, recorded in release.json and shown by 'autoupdate check --json'.")
    var reason: String?

    @OptionGroup var index: IndexSigningOptions

    func run() async throws {
        global.bootstrapLogging()
        try await Failure.reporting {
            let written = try Publisher.yank(
                try Version(version), reason: reason, in: index.out, secretKey: try index.secretKeyValue(),
                versionExpiresIn: index.expiry, app: index.app)
            print("yanked \(version); \(index.out)/release.json: serial \(written.serial)")
        }
    }
}

/// Where the index is, and how to sign it again.
struct IndexSigningOptions: ParsableArguments {
    @Option(help: "The server folder holding release.json.")
    var out: String

    @Option(help: "Sign the new index with this minisign secret key (required when the index was signed).")
    var secretKey: String?

    @Option(help: "With --secret-key: the signatures of release.json and version.txt are trusted for this many seconds.")
    var expiresIn: Double?

    @Option(help: "With --secret-key: the app the signatures are for, as given to publish.")
    var app: String?

    func validate() throws {
        if expiresIn != nil || app != nil, secretKey == nil {
            throw ValidationError("--expires-in and --app need --secret-key.")
        }
        if let expiresIn, !(expiresIn > 0 && expiresIn.isFinite) {
            throw ValidationError("--expires-in must be a positive number of seconds.")
        }
    }

    func secretKeyValue() throws -> Minisign.SecretKey? {
        try secretKey.map(Minisign.SecretKey.init(file:))
    }

    var expiry: Duration? { expiresIn.map { .milliseconds(Int64($0 * 1000)) } }
}

import ArgumentParser
import Autoupdate

struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Turn a folder into what a static HTTPS server serves: the archive and version.txt.",
        discussion: """
            The archive's format follows its name (.zip, .tar.gz, .tar.bz2). Every file is \
            written and flushed under a temporary name before any is renamed into place, the \
            archive first and version.txt last, so clients never see a version whose archive is \
            incomplete, and a publish that fails leaves OUT exactly as it was. Upload OUT to any \
            static HTTPS host.
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

    func validate() throws {
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
            let result = try Publisher.publish(
                source: source, version: try Version(version), to: out, archive: try ArchiveName(archive),
                secretKey: try secretKey.map(Minisign.SecretKey.init(file:)),
                versionExpiresIn: expiresIn.map { .milliseconds(Int64($0 * 1000)) },
                app: app)
            print(
                "published \(result.version): \(result.archive) (\(count(result.entries, "entry", plural: "entries")), \(ProgressDisplay.bytes(result.bytes)), sha256 \(result.sha256)) and \(out)/version.txt"
            )
            if let signature = result.signature {
                print(
                    "signed\(result.app.map { " for app '\($0)'" } ?? ""): \(signature)\(result.versionSignature.map { " and \($0)" } ?? "")"
                )
            }
        }
    }
}

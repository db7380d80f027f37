import ArgumentParser
import Autoupdate
import Foundation

/// Where the app is and where its updates come from.
///
/// Inside an app started by `autoupdate run` (or a ``Launcher``) every option may be left out:
/// the launcher's environment (``UpdateContext``) supplies it, as the seed's `check_new` did.
struct UpdateOptions: ParsableArguments {
    @Option(help: "The HTTPS folder that holds version.txt and the archive (http is upgraded to https). Default: $AUTOUPDATE_URL.")
    var url: String?

    @Option(help: "The app folder. Default: $AUTOUPDATE_DIR, else the current directory.")
    var dir: String?

    @Option(help: "A PEM file of CA certificates to trust besides the system's (a private CA, a test server). Default: $AUTOUPDATE_CA_FILE.")
    var caFile: String?

    private var environment: [String: String] { ProcessInfo.processInfo.environment }

    func validate() throws {
        if url == nil, environment[UpdateContext.Variable.url] == nil {
            throw ValidationError("Missing --url (inside an app started by 'autoupdate run', $AUTOUPDATE_URL stands in for it).")
        }
    }

    func folder() -> AppFolder {
        AppFolder(path: dir ?? environment[UpdateContext.Variable.folder] ?? ".")
    }

    func updateURL() throws -> UpdateURL {
        try UpdateURL(url ?? environment[UpdateContext.Variable.url] ?? "")
    }

    func downloadConfiguration() -> DownloadConfiguration {
        DownloadConfiguration(caFile: caFile ?? environment[UpdateContext.Variable.caFile])
    }

    /// `--archive`, else the launcher's `$AUTOUPDATE_NEWFILES`, else `project.zip`.
    func archiveName(_ option: String?) throws -> ArchiveName {
        try ArchiveName(option ?? environment[UpdateContext.Variable.newfiles] ?? ArchiveName.default.name)
    }
}

/// Whom updates must come from (`--public-key`) and how fresh the server's word must be.
struct TrustOptions: ParsableArguments {
    @Option(
        name: .customLong("public-key"),
        help: "A minisign public key (a file, or the one-line RWQ… key) whose signature every archive must carry. Repeat it during a key rotation.")
    var publicKeys: [String] = []

    @Flag(help: "Require version.txt.minisig, signed by a --public-key, not yet expired (freeze protection).")
    var requireFresh = false

    @Option(help: "With --public-key: also require version.txt.minisig to be at most this many seconds old.")
    var maxAge: Double?

    func validate() throws {
        if (requireFresh || maxAge != nil), publicKeys.isEmpty {
            throw ValidationError("--require-fresh and --max-age need --public-key to check the signature with.")
        }
        if let maxAge, !(maxAge > 0 && maxAge.isFinite) {
            throw ValidationError("--max-age must be a positive number of seconds.")
        }
    }

    func trustPolicy() throws -> TrustPolicy {
        TrustPolicy(
            publicKeys: try publicKeys.map(Minisign.PublicKey.init(fileOrKey:)), requireFreshVersion: requireFresh,
            maxVersionAge: maxAge.map { .milliseconds(Int64($0 * 1000)) })
    }
}

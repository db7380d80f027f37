import ArgumentParser
import Autoupdate
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where the app is and where its updates come from.
///
/// Inside an app started by `autoupdate run` (or a ``Launcher``) every option may be left out:
/// the launcher's environment (``UpdateContext``) supplies it, as the seed's `check_new` did.
struct UpdateOptions: ParsableArguments {
    @Option(help: "The HTTPS folder that holds version.txt and the archive (http is upgraded to https). Default: $AUTOUPDATE_URL.")
    var url: String?

    @Option(
        help:
            "Update from this folder instead of a server (a USB stick, a mounted share), laid out as the server is; no network. Needs --public-key: only signatures vouch for what a folder holds."
    )
    var from: String?

    @Option(help: "The app folder. Default: $AUTOUPDATE_DIR, else the current directory.")
    var dir: String?

    @Option(
        help: "A PEM file of CA certificates to trust besides the system's (a private CA, a test server). Default: $AUTOUPDATE_CA_FILE.")
    var caFile: String?

    @Option(
        help:
            "The most bytes an update may download, and the most its files may hold once extracted. Default: 4 GiB downloaded, 8 GiB extracted (a signed release's own sizes cap both exactly)."
    )
    var maxBytes: Int64?

    @Option(help: "Seconds one check of the server may take in all, however the server behaves (default: 5 for run, 30 otherwise).")
    var checkTimeout: Double?

    @Option(
        help:
            "The release channel to follow when the server has a release.json: stable (default), beta, alpha or any it lists; a channel also takes every more stable one's releases. Default: $AUTOUPDATE_CHANNEL."
    )
    var channel: String?

    @Option(help: "Only versions in this PEP 440 specifier set, such as '~=2.1', '>=2,<3', '==2.*', '!=2.3.1'. Default: $AUTOUPDATE_PIN.")
    var pin: String?

    @Option(
        help:
            "Fetch only the archive's pieces that hold changed files: auto (when they are less than 80 % of it), always, or never (the whole archive, for a server that mishandles Range)."
    )
    var differential: DifferentialOption = .auto

    @Option(
        help: ArgumentHelp(
            "The most bytes per second to download, averaged: 300K, 2M (K and M are 1024 and 1024², as for curl --limit-rate); at least 4K.",
            valueName: "bytes"))
    var maxRate: String?

    @Option(
        help:
            "A proxy for every request: http://, https://, socks5:// or socks5h://HOST:PORT, with user:password@ if it needs them. Without it, https_proxy, all_proxy and no_proxy apply as for curl."
    )
    var proxy: String?

    @Option(help: "A file whose first line is user:password for the proxy (kept off the command line, which other users can see).")
    var proxyUserFile: String?

    @Option(
        help:
            "Another server with the same update folder, tried when the one before fails (unreachable, TLS, an HTTP error, or content that does not verify); repeat for more, in order. What a mirror serves is verified as from --url."
    )
    var mirror: [String] = []

    private var environment: [String: String] { ProcessInfo.processInfo.environment }

    func validate() throws {
        if from != nil, url != nil || !mirror.isEmpty {
            throw ValidationError("--from replaces the server: give it without --url and --mirror.")
        }
        if url == nil, from == nil, environment[UpdateContext.Variable.url] == nil {
            throw ValidationError("Missing --url (inside an app started by 'autoupdate run', $AUTOUPDATE_URL stands in for it).")
        }
        if let maxBytes, maxBytes <= 0 {
            throw ValidationError("--max-bytes must be a positive number of bytes.")
        }
        if let checkTimeout, !(checkTimeout > 0 && checkTimeout.isFinite) {
            throw ValidationError("--check-timeout must be a positive number of seconds.")
        }
        if let maxRate {
            guard let rate = Self.bytesPerSecond(maxRate) else {
                throw ValidationError("--max-rate \(maxRate): give bytes per second, such as 500000, 300K or 2M.")
            }
            guard rate >= 4096 else {
                throw ValidationError("--max-rate \(maxRate): at least 4K (a slower transfer counts as stalled).")
            }
        }
        if let proxy, !["http://", "https://", "socks5://", "socks5h://"].contains(where: { proxy.lowercased().hasPrefix($0) }) {
            throw ValidationError("--proxy \(proxy): give http://, https://, socks5:// or socks5h://HOST:PORT.")
        }
        if proxyUserFile != nil, proxy == nil {
            throw ValidationError("--proxy-user-file needs --proxy.")
        }
        if let channel, !ReleaseIndex.isValidChannel(channel) {
            throw ValidationError("--channel \(channel): a channel is 1 to 64 of a-z, 0-9, '.', '_' and '-'.")
        }
        if let pin {
            do {
                _ = try VersionSpecifierSet(pin)
            } catch let error as AutoupdateError {
                throw ValidationError("--pin: \(error.message)")
            }
        }
    }

    /// `--channel`, else the launcher's, else `stable`.
    func releaseChannel() throws -> String {
        try channel ?? UpdateContext.channel(from: environment)
    }

    /// `--pin`, else the launcher's.
    func releasePin() throws -> VersionSpecifierSet? {
        try pin.map(VersionSpecifierSet.init) ?? UpdateContext.pin(from: environment)
    }

    func folder() -> AppFolder {
        AppFolder(path: dir ?? environment[UpdateContext.Variable.folder] ?? ".")
    }

    func updateURL() throws -> UpdateURL {
        if let from {
            return try UpdateURL(localFolder: from)
        }
        return try UpdateURL(source: url ?? environment[UpdateContext.Variable.url] ?? "")
    }

    func downloadConfiguration() throws -> DownloadConfiguration {
        var configuration = DownloadConfiguration(caFile: caFile ?? environment[UpdateContext.Variable.caFile])
        if let maxBytes {
            configuration.maxBytes = maxBytes
        }
        configuration.maxBytesPerSecond = maxRate.flatMap(Self.bytesPerSecond)
        configuration.proxy = proxy
        if let proxyUserFile {
            guard let data = FileManager.default.contents(atPath: proxyUserFile) else {
                throw AutoupdateError(.invalidArgument, "--proxy-user-file \(proxyUserFile): cannot read it")
            }
            let line = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            guard line.contains(":") else {
                throw AutoupdateError(.invalidArgument, "--proxy-user-file \(proxyUserFile): its first line must be user:password")
            }
            configuration.proxyCredentials = line
        }
        return configuration
    }

    /// `500000`, `300K`, `2M` (K = 1024, as curl's `--limit-rate`) as bytes per second.
    static func bytesPerSecond(_ text: String) -> Int64? {
        let unit: Int64 =
            switch text.last {
            case "k", "K": 1024
            case "m", "M": 1024 * 1024
            default: 1
            }
        guard let count = Int64(unit == 1 ? text : String(text.dropLast())), count > 0, count <= Int64.max / unit else { return nil }
        return count * unit
    }

    func extractionConfiguration() -> ExtractionConfiguration {
        var configuration = ExtractionConfiguration()
        if let maxBytes {
            configuration.maxBytes = maxBytes
        }
        return configuration
    }

    /// `--check-timeout`, else `fallback`.
    func checkTimeout(default fallback: Duration = UpdaterConfiguration.defaultCheckTimeout) -> Duration {
        checkTimeout.map { .milliseconds(Int64($0 * 1000)) } ?? fallback
    }

    /// `--mirror`, in order.
    func mirrors() throws -> [UpdateURL] {
        try mirror.map { try UpdateURL($0) }
    }

    /// Everything an updater needs from these options and the trust flags.
    func updaterConfiguration(archive: String?, trust: TrustOptions) throws -> UpdaterConfiguration {
        UpdaterConfiguration(
            archive: try archiveName(archive), download: try downloadConfiguration(), extraction: extractionConfiguration(),
            trust: try trust.trustPolicy(), checkTimeout: checkTimeout(), channel: try releaseChannel(), pin: try releasePin(),
            differential: differential.setting, mirrors: try mirrors())
    }

    /// `--archive`, else the launcher's `$AUTOUPDATE_NEWFILES`, else `project.zip`.
    func archiveName(_ option: String?) throws -> ArchiveName {
        try ArchiveName(option ?? environment[UpdateContext.Variable.newfiles] ?? ArchiveName.default.name)
    }
}

/// Whom updates must come from (`--public-key`) and how fresh the server's word must be.
///
/// Inside an app started by `autoupdate run` or `watch`, the launcher's policy (its
/// `AUTOUPDATE_PUBLIC_KEYS`, `AUTOUPDATE_REQUIRE_FRESH`, `AUTOUPDATE_MAX_AGE`, `AUTOUPDATE_APP`)
/// applies on top of these flags, so that the app's own checks are held to the same rules.
struct TrustOptions: ParsableArguments {
    @Option(
        name: .customLong("public-key"),
        help:
            "A minisign public key (a file, or the one-line RWQ… key) whose signature every archive must carry. Repeat it during a key rotation. Default: $AUTOUPDATE_PUBLIC_KEYS."
    )
    var publicKeys: [String] = []

    @Flag(help: "Require version.txt.minisig, signed by a --public-key, not yet expired (freeze protection).")
    var requireFresh = false

    @Option(help: "With --public-key: also require version.txt.minisig to be at most this many seconds old.")
    var maxAge: Double?

    @Option(
        help:
            "The app's name, which signatures must give (publish --app): another app's release is refused. Default: the URL's last path component, for signatures that name an app."
    )
    var app: String?

    private var inherited: TrustPolicy? {
        try? UpdateContext.trustPolicy()
    }

    func validate() throws {
        if requireFresh || maxAge != nil, publicKeys.isEmpty, inherited?.requiresSignatures != true {
            throw ValidationError("--require-fresh and --max-age need --public-key to check the signature with.")
        }
        if let maxAge, !(maxAge > 0 && maxAge.isFinite) {
            throw ValidationError("--max-age must be a positive number of seconds.")
        }
    }

    /// The flags' policy, joined with the launcher's when there is one: keys from both, the
    /// stricter freshness, the flag's app name over the launcher's.
    func trustPolicy() throws -> TrustPolicy {
        let launcher = try UpdateContext.trustPolicy()
        let keys = try publicKeys.map(Minisign.PublicKey.init(fileOrKey:))
        if let app {
            try ReleaseComment.validate(app: app)
        }
        let ages = [maxAge.map { Duration.milliseconds(Int64($0 * 1000)) }, launcher.maxVersionAge].compactMap { $0 }
        return TrustPolicy(
            publicKeys: keys + launcher.publicKeys.filter { !keys.contains($0) },
            requireFreshVersion: requireFresh || launcher.requireFreshVersion,
            maxVersionAge: ages.min(), app: app ?? launcher.app)
    }
}

/// `--differential`'s values.
enum DifferentialOption: String, CaseIterable, ExpressibleByArgument {
    case auto, always, never

    var setting: DifferentialUpdates {
        switch self {
        case .auto: .automatic
        case .always: .always
        case .never: .never
        }
    }
}

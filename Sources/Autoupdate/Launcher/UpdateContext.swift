#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif
public import Logging

/// What a launched app knows about its launcher: the seed's "variables already defined", passed
/// through the environment.
///
/// Inside the app (a Swift program run by ``Launcher`` or `autoupdate run`):
/// ```swift
/// if let context = try UpdateContext.fromEnvironment(), try await context.checkNew() {
///     print("version \(try context.queuedVersion()) is ready; it installs at the next start")
/// }
/// ```
/// A program in another language reads the same variables, or runs `autoupdate check` with no
/// flags, which reads them too.
public struct UpdateContext: Sendable, Equatable {
    /// `AUTOUPDATE_FILEPATH`: the app's executable, absolute.
    public var filepath: String
    /// `AUTOUPDATE_URL`: where updates come from.
    public var url: UpdateURL
    /// `AUTOUPDATE_NEWFILES`: the archive's name on the server.
    public var newfiles: ArchiveName
    /// `AUTOUPDATE_PID`: the launcher's pid (the seed's `pid`).
    public var parentPID: Int32
    /// `AUTOUPDATE_DIR`: the app folder.
    public var folder: AppFolder
    /// `AUTOUPDATE_LOG_LEVEL`: trace, debug, info, notice, warning, error or critical.
    public var logLevel: Logger.Level
    /// `AUTOUPDATE_KWARGS`: the launcher's keyword arguments, a JSON object of strings.
    public var kwargs: [String: String]
    /// `AUTOUPDATE_CA_FILE`: an extra trust anchor the launcher was given (tests, private CAs).
    public var caFile: String?
    /// The launcher's trust policy, so that the app's own checks hold the server to the same
    /// rules: `AUTOUPDATE_PUBLIC_KEYS` (one-line keys, comma-separated), `AUTOUPDATE_REQUIRE_FRESH`
    /// (`1`), `AUTOUPDATE_MAX_AGE` (seconds) and `AUTOUPDATE_APP`.
    public var trust: TrustPolicy
    /// `AUTOUPDATE_CHANNEL`: the release channel the launcher follows.
    public var channel: String
    /// `AUTOUPDATE_PIN`: the launcher's pin, a PEP 440 specifier set.
    public var pin: VersionSpecifierSet?

    /// The variables' names.
    public enum Variable {
        public static let filepath = "AUTOUPDATE_FILEPATH"
        public static let url = "AUTOUPDATE_URL"
        public static let newfiles = "AUTOUPDATE_NEWFILES"
        public static let parentPID = "AUTOUPDATE_PID"
        public static let folder = "AUTOUPDATE_DIR"
        public static let logLevel = "AUTOUPDATE_LOG_LEVEL"
        public static let kwargs = "AUTOUPDATE_KWARGS"
        public static let caFile = "AUTOUPDATE_CA_FILE"
        public static let publicKeys = "AUTOUPDATE_PUBLIC_KEYS"
        public static let requireFresh = "AUTOUPDATE_REQUIRE_FRESH"
        public static let maxAge = "AUTOUPDATE_MAX_AGE"
        public static let app = "AUTOUPDATE_APP"
        public static let channel = "AUTOUPDATE_CHANNEL"
        public static let pin = "AUTOUPDATE_PIN"
    }

    public init(
        filepath: String, url: UpdateURL, newfiles: ArchiveName = .default, parentPID: Int32, folder: AppFolder,
        logLevel: Logger.Level = .warning, kwargs: [String: String] = [:], caFile: String? = nil, trust: TrustPolicy = TrustPolicy(),
        channel: String = "stable", pin: VersionSpecifierSet? = nil
    ) {
        self.channel = channel
        self.pin = pin
        self.filepath = filepath
        self.url = url
        self.newfiles = newfiles
        self.parentPID = parentPID
        self.folder = folder
        self.logLevel = logLevel
        self.kwargs = kwargs
        self.caFile = caFile
        self.trust = trust
    }

    /// The context this process was launched with.
    ///
    /// - Parameter environment: The variables to read (this process's by default).
    /// - Returns: `nil` when the process was not started by a launcher (`AUTOUPDATE_URL` unset).
    /// - Throws: ``AutoupdateError`` `.invalidArgument` naming the variable that is set but malformed.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> UpdateContext? {
        guard let urlText = environment[Variable.url] else { return nil }
        func required(_ name: String) throws -> String {
            guard let value = environment[name], !value.isEmpty else {
                throw AutoupdateError(
                    .invalidArgument, "\(Variable.url) is set but \(name) is missing: the launcher's environment is incomplete")
            }
            return value
        }
        func invalid(_ name: String, _ why: String) -> AutoupdateError {
            AutoupdateError.invalidEnvironment(name, why)
        }
        let url: UpdateURL
        do {
            url = try UpdateURL(source: urlText)
        } catch let error as AutoupdateError {
            throw invalid(Variable.url, error.message)
        }
        let newfiles: ArchiveName
        do {
            newfiles = try environment[Variable.newfiles].map(ArchiveName.init) ?? .default
        } catch let error as AutoupdateError {
            throw invalid(Variable.newfiles, error.message)
        }
        let pidText = try required(Variable.parentPID)
        guard let parentPID = Int32(pidText), parentPID > 0 else {
            throw invalid(Variable.parentPID, "\(quoted(pidText)) is not a process id")
        }
        let levelText = environment[Variable.logLevel] ?? "warning"
        guard let logLevel = Logger.Level(rawValue: levelText.lowercased()) else {
            throw invalid(Variable.logLevel, "\(quoted(levelText)) is not one of trace, debug, info, notice, warning, error, critical")
        }
        var kwargs: [String: String] = [:]
        if let json = environment[Variable.kwargs], !json.isEmpty {
            guard let decoded = try? JSONDecoder().decode([String: String].self, from: Data(json.utf8)) else {
                throw invalid(Variable.kwargs, "not a JSON object of strings")
            }
            kwargs = decoded
        }
        return UpdateContext(
            filepath: try required(Variable.filepath), url: url, newfiles: newfiles, parentPID: parentPID,
            folder: AppFolder(path: try required(Variable.folder)), logLevel: logLevel, kwargs: kwargs,
            caFile: environment[Variable.caFile].flatMap { $0.isEmpty ? nil : $0 },
            trust: try trustPolicy(from: environment), channel: try channel(from: environment), pin: try pin(from: environment))
    }

    /// `AUTOUPDATE_CHANNEL`, else `stable`.
    public static func channel(from environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        guard let channel = environment[Variable.channel], !channel.isEmpty else { return "stable" }
        guard ReleaseIndex.isValidChannel(channel) else {
            throw AutoupdateError.invalidEnvironment(Variable.channel, "a channel is 1 to 64 of a-z, 0-9, '.', '_' and '-'")
        }
        return channel
    }

    /// `AUTOUPDATE_PIN`, if set.
    public static func pin(from environment: [String: String] = ProcessInfo.processInfo.environment) throws -> VersionSpecifierSet? {
        guard let text = environment[Variable.pin], !text.isEmpty else { return nil }
        do {
            return try VersionSpecifierSet(text)
        } catch let error as AutoupdateError {
            throw AutoupdateError.invalidEnvironment(Variable.pin, error.message)
        }
    }

    /// The trust policy the variables describe (none set: HTTPS alone).
    ///
    /// - Throws: ``AutoupdateError`` `.invalidArgument` naming the malformed variable.
    public static func trustPolicy(from environment: [String: String] = ProcessInfo.processInfo.environment) throws -> TrustPolicy {
        func invalid(_ name: String, _ why: String) -> AutoupdateError {
            AutoupdateError.invalidEnvironment(name, why)
        }
        var keys: [Minisign.PublicKey] = []
        for text in (environment[Variable.publicKeys] ?? "").split(separator: ",") {
            do {
                keys.append(try Minisign.PublicKey(text: String(text)))
            } catch let error as AutoupdateError {
                throw invalid(Variable.publicKeys, error.message)
            }
        }
        let requireFresh = environment[Variable.requireFresh].map { ["1", "true", "yes"].contains($0.lowercased()) } ?? false
        var maxAge: Duration?
        if let text = environment[Variable.maxAge], !text.isEmpty {
            guard let seconds = Double(text), seconds > 0, seconds.isFinite else {
                throw invalid(Variable.maxAge, "\(quoted(text)) is not a positive number of seconds")
            }
            maxAge = .milliseconds(Int64(seconds * 1000))
        }
        if requireFresh || maxAge != nil, keys.isEmpty {
            throw invalid(Variable.requireFresh, "freshness needs \(Variable.publicKeys) to check the signature with")
        }
        let app = environment[Variable.app].flatMap { $0.isEmpty ? nil : $0 }
        if let app {
            do {
                try ReleaseComment.validate(app: app)
            } catch let error as AutoupdateError {
                throw invalid(Variable.app, error.message)
            }
        }
        return TrustPolicy(publicKeys: keys, requireFreshVersion: requireFresh, maxVersionAge: maxAge, app: app)
    }

    /// The variables, as a launcher sets them for its child.
    public var environment: [String: String] {
        var variables = [
            Variable.filepath: filepath,
            Variable.url: url.description,
            Variable.newfiles: newfiles.name,
            Variable.parentPID: String(parentPID),
            Variable.folder: folder.path,
            Variable.logLevel: logLevel.rawValue,
            Variable.kwargs: Self.json(kwargs),
        ]
        variables[Variable.caFile] = caFile
        if trust.requiresSignatures {
            variables[Variable.publicKeys] = trust.publicKeys.map(\.base64).joined(separator: ",")
        }
        if trust.requireFreshVersion {
            variables[Variable.requireFresh] = "1"
        }
        variables[Variable.maxAge] = trust.maxVersionAge.map { String($0.timeInterval) }
        variables[Variable.app] = trust.app
        variables[Variable.channel] = channel
        variables[Variable.pin] = pin?.description
        return variables
    }

    /// How a launcher runs the app: `filepath` in the app folder, with this process's
    /// environment plus the context's variables.
    func appConfiguration(
        arguments: [String], grace: Duration, foregroundTerminal: Int32? = nil, adoptsOrphans: Bool = false
    ) -> ProcessConfiguration {
        ProcessConfiguration(
            executable: filepath, arguments: arguments,
            environment: ProcessInfo.processInfo.environment.merging(environment) { _, ours in ours },
            workingDirectory: folder.path, grace: grace, foregroundTerminal: foregroundTerminal, adoptsOrphans: adoptsOrphans)
    }

    /// The seed's `check_new`, from inside the app: whether a newer version is available (it is
    /// queued in `.queue` for the launcher to install), held to the launcher's trust policy.
    public func checkNew() async throws -> Bool {
        try await Updater(
            folder: folder, url: url,
            configuration: UpdaterConfiguration(
                archive: newfiles, download: DownloadConfiguration(caFile: caFile), trust: trust, channel: channel, pin: pin),
            logger: logger
        ).checkNew()
    }

    /// The version waiting in `.queue`, if any.
    public func queuedVersion() -> Version? {
        folder.readQueue().value
    }

    private var logger: Logger {
        var logger = Logger(label: "autoupdate")
        logger.logLevel = logLevel
        return logger
    }

    private static func json(_ kwargs: [String: String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(kwargs)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

public import Foundation
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
    }

    public init(
        filepath: String, url: UpdateURL, newfiles: ArchiveName = .default, parentPID: Int32, folder: AppFolder,
        logLevel: Logger.Level = .warning, kwargs: [String: String] = [:], caFile: String? = nil
    ) {
        self.filepath = filepath
        self.url = url
        self.newfiles = newfiles
        self.parentPID = parentPID
        self.folder = folder
        self.logLevel = logLevel
        self.kwargs = kwargs
        self.caFile = caFile
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
                throw AutoupdateError(.invalidArgument, "\(Variable.url) is set but \(name) is missing: the launcher's environment is incomplete")
            }
            return value
        }
        func invalid(_ name: String, _ why: String) -> AutoupdateError {
            AutoupdateError(.invalidArgument, "the environment variable \(name) is invalid: \(why)")
        }
        let url: UpdateURL
        do {
            url = try UpdateURL(urlText)
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
            caFile: environment[Variable.caFile].flatMap { $0.isEmpty ? nil : $0 })
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
        return variables
    }

    /// How a launcher runs the app: `filepath` in the app folder, with this process's
    /// environment plus the context's variables.
    func appConfiguration(arguments: [String], grace: Duration, foregroundTerminal: Int32? = nil) -> ProcessConfiguration {
        ProcessConfiguration(
            executable: filepath, arguments: arguments,
            environment: ProcessInfo.processInfo.environment.merging(environment) { _, ours in ours },
            workingDirectory: folder.path, grace: grace, foregroundTerminal: foregroundTerminal)
    }

    /// The seed's `check_new`, from inside the app: whether a newer version is available (it is
    /// queued in `.queue` for the launcher to install).
    public func checkNew() async throws -> Bool {
        try await Updater(
            folder: folder, url: url, configuration: UpdaterConfiguration(archive: newfiles, download: DownloadConfiguration(caFile: caFile)),
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

import ArgumentParser
import Logging

/// Options every command accepts.
struct GlobalOptions: ParsableArguments {
    @Option(help: "How much to log on stderr: trace, debug, info, notice, warning or error.")
    var logLevel: LogLevel = .warning

    /// Sends the library's logs to stderr at the chosen level. Called once, first thing in `run()`.
    func bootstrapLogging() {
        let level = logLevel.level
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

/// The levels `--log-level` accepts (swift-log's, without `critical`, which we never log).
enum LogLevel: String, CaseIterable, ExpressibleByArgument {
    case trace, debug, info, notice, warning, error

    var level: Logger.Level {
        switch self {
        case .trace: .trace
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        }
    }
}

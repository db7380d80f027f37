import ArgumentParser
import Autoupdate
import Logging

/// Options every command accepts.
struct GlobalOptions: ParsableArguments {
    @Option(help: "How much to log on stderr: trace, debug, info, notice, warning or error.")
    var logLevel: LogLevel = .warning

    /// Sends the library's logs to stderr at the chosen level. Called once, first thing in `run()`.
    ///
    /// The library logs at `info` and below; what it marks for a person's attention
    /// (``Logger/attentionKey``) is shown here as a warning.
    func bootstrapLogging() {
        let level = logLevel.level
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .trace
            return AttentionLogHandler(wrapping: handler, level: level)
        }
    }
}

/// Shows the records the library marks for attention as warnings, then filters by the level
/// chosen with `--log-level`.
struct AttentionLogHandler: LogHandler {
    private var wrapped: any LogHandler
    /// The level chosen (by `--log-level`, or a `Launcher`'s `logLevel`).
    private var chosen: Logger.Level

    init(wrapping handler: any LogHandler, level: Logger.Level) {
        wrapped = handler
        chosen = level
    }

    /// What `Logger` filters by before calling this handler: `info` at most, so that a marked
    /// `info` record reaches ``log(event:)``, which filters by the chosen level.
    var logLevel: Logger.Level {
        get { min(chosen, .info) }
        set { chosen = newValue }
    }

    var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        if event.metadata?.removeValue(forKey: Logger.attentionKey) != nil {
            event.level = max(event.level, .warning)
        }
        guard event.level >= chosen else { return }
        wrapped.log(event: event)
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

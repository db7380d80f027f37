/// The one error type the `Autoupdate` library throws (the seed's `PyautoupdateBaseException`).
///
/// Every error carries a ``code`` a caller can branch on, a ``message`` written for a person
/// that names what is at fault (the URL, the file, the archive entry), and, where a lower layer
/// failed, the ``underlying`` cause. Conditions the seed treats as warnings (a corrupted
/// `version.txt`, a server with an invalid version) are logged and reported, never thrown.
///
/// ```swift
/// do {
///     let version = try Version("banana")
/// } catch let error as AutoupdateError where error.code == .invalidVersion {
///     print(error.message) // "'banana' is not a valid PEP 440 version: …"
/// }
/// ```
///
/// `CancellationError` is never wrapped: a cancelled operation throws it unchanged.
public struct AutoupdateError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What kind of failure this is; compare with the static members (`error.code == .network`).
    ///
    /// A struct over a private enum, so that new codes can be added without breaking a caller's
    /// `switch`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case invalidVersion
            case invalidURL
            case invalidArgument
            case processRunning
            case corruptedFile
            case network
            case tls
            case httpStatus
            case rangeNotHonoured
            case timeout
            case sizeLimitExceeded
            case unsafeEntry
            case corruptArchive
            case unsupportedArchive
            case checksumMismatch
            case signature
            case rollback
            case install
            case locked
            case fileSystem
            case spawn
        }

        private let value: Value

        private init(_ value: Value) {
            self.value = value
        }

        /// A string is not a valid PEP 440 version or version specifier.
        public static let invalidVersion = Code(.invalidVersion)
        /// A URL is empty, malformed, or uses a scheme other than HTTPS (HTTP is upgraded).
        public static let invalidURL = Code(.invalidURL)
        /// An argument is outside what the API accepts (an archive name, a path outside the app folder).
        public static let invalidArgument = Code(.invalidArgument)
        /// The app's process is running, so it cannot be started again or updated (the seed's
        /// `ProcessRunningException`).
        public static let processRunning = Code(.processRunning)
        /// A file of the app-folder layout is corrupted (the seed's `CorruptedFileWarning`).
        public static let corruptedFile = Code(.corruptedFile)
        /// The network failed: DNS, connection refused or reset, a transfer cut short.
        public static let network = Code(.network)
        /// TLS failed: an untrusted or invalid certificate, a failed handshake.
        public static let tls = Code(.tls)
        /// The server answered with an HTTP error status (404, 500, 429, …).
        public static let httpStatus = Code(.httpStatus)
        /// A server answered a Range request with the whole file, another range or another
        /// length: a differential update then downloads the whole archive.
        public static let rangeNotHonoured = Code(.rangeNotHonoured)
        /// A connect timeout, a transfer slower than the configured floor, or an overall deadline.
        public static let timeout = Code(.timeout)
        /// More bytes than allowed: a download over its cap, an archive over its extraction cap.
        public static let sizeLimitExceeded = Code(.sizeLimitExceeded)
        /// An archive entry that would escape the destination or is of a forbidden kind.
        public static let unsafeEntry = Code(.unsafeEntry)
        /// An archive or compressed stream that is malformed or truncated.
        public static let corruptArchive = Code(.corruptArchive)
        /// An archive feature that is refused on purpose (encryption, an unknown compression method).
        public static let unsupportedArchive = Code(.unsupportedArchive)
        /// A CRC, length or hash check failed.
        public static let checksumMismatch = Code(.checksumMismatch)
        /// A signature is missing, malformed, by an unknown key, or does not verify.
        public static let signature = Code(.signature)
        /// An update older than a version installed here before (rollback protection): refused
        /// even when validly signed.
        public static let rollback = Code(.rollback)
        /// Installing an update failed; the app folder was restored.
        public static let install = Code(.install)
        /// Another updater holds the app folder's lock.
        public static let locked = Code(.locked)
        /// A file-system operation failed (permissions, a full disk, a missing folder).
        public static let fileSystem = Code(.fileSystem)
        /// The app's executable could not be started (missing, not executable, bad interpreter).
        public static let spawn = Code(.spawn)

        public var description: String { value.rawValue }
    }

    /// Where in this library the error was raised, for `--log-level debug` and bug reports.
    public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
        public let file: String
        public let line: Int
        public var description: String { "\(file):\(line)" }
    }

    /// What kind of failure this is.
    public let code: Code
    /// One sentence for a person: what failed, naming the URL, file or entry at fault.
    public let message: String
    /// The lower-level cause, when there is one (an `Errno`, a libcurl or zlib status).
    public let underlying: (any Error)?
    /// Where the error was raised.
    public let location: SourceLocation

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: What kind of failure this is.
    ///   - message: One sentence naming what is at fault.
    ///   - underlying: The lower-level cause, if any.
    ///   - file: Where it was thrown (``location``).
    ///   - line: Where it was thrown (``location``).
    public init(
        _ code: Code,
        _ message: String,
        underlying: (any Error)? = nil,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.underlying = underlying
        self.location = SourceLocation(file: file, line: line)
    }

    /// The message alone: what a CLI prints on its one line.
    public var description: String { message }

    /// The code, the message, the chain of causes and the location.
    public var debugDescription: String {
        var text = "[\(code)] \(message)"
        var cause = underlying
        while let current = cause {
            if let nested = current as? AutoupdateError {
                text += "\n  caused by [\(nested.code)] \(nested.message)"
                cause = nested.underlying
            } else {
                text += "\n  caused by \(String(describing: current))"
                cause = nil
            }
        }
        return text + "\n  at \(location)"
    }

    /// A copy whose message is prefixed with context from a higher layer, keeping the code and
    /// the cause: "installing project.zip: …".
    public func adding(context: String) -> AutoupdateError {
        AutoupdateError(
            code, "\(context): \(message)", underlying: underlying,
            file: location.file, line: location.line)
    }
}

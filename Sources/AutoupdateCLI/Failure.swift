import ArgumentParser
import Autoupdate
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The one place that turns a failure into an exit status and a line on stderr.
///
/// | exit | meaning |
/// |---|---|
/// | 0 | success |
/// | 1 | the operation failed (network, archive, signature, install, …) |
/// | 2 | an invalid version or URL given on the command line |
/// | 64 | a usage error (unknown flag, missing argument), from ArgumentParser |
enum Failure {
    static func exitCode(for code: AutoupdateError.Code) -> Int32 {
        switch code {
        case .invalidVersion, .invalidURL: 2
        default: 1
        }
    }

    /// Runs a command's body; an ``AutoupdateError`` becomes one line on stderr and its exit code.
    static func reporting(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as AutoupdateError {
            printError(error.message)
            throw ExitCode(exitCode(for: error.code))
        }
    }

    /// Writes `autoupdate: error: <message>` on stderr.
    static func printError(_ message: String) {
        writeStandardError("autoupdate: error: \(message)\n")
    }
}

import Foundation

/// The Python interpreter with the reference libraries (`packaging`) that differential tests
/// compare against: `$AUTOUPDATE_PYTHON` (the venv `make deps` creates), else a `python3` on
/// the PATH that can import `packaging`, else `nil` (the tests that need it are skipped).
public enum ReferencePython {
    public static let interpreter: String? = {
        var candidates: [String] = []
        if let configured = ProcessInfo.processInfo.environment["AUTOUPDATE_PYTHON"], !configured.isEmpty {
            candidates.append(configured)
        }
        candidates.append("python3")
        return candidates.first { candidate in
            (try? ChildProcess.runBlocking(candidate, ["-c", "import packaging.version"]))?.status == 0
        }
    }()

    /// Runs a Python script with the reference interpreter.
    public static func run(script: String, arguments: [String] = []) async throws -> ChildProcess.Result {
        guard let interpreter else {
            throw TestFailure("no Python with 'packaging' (run `make deps`)")
        }
        return try await ChildProcess.run(interpreter, ["-c", script] + arguments)
    }
}

/// A failure raised by test support itself, with a message for the test log.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public import Foundation

/// Runs a tool (the built CLI, Python, tar, …) to completion and captures what it printed.
public enum ChildProcess {
    public struct Result: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    /// Runs `executable` (a path, or a name looked up on PATH) with `arguments`, awaiting its
    /// exit without blocking a thread of the cooperative pool (which the in-process test server
    /// needs). A child still running after `timeout` is killed and the call throws.
    public static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil,
        currentDirectory: String? = nil,
        timeout: Duration = .seconds(300)
    ) async throws -> Result {
        let (process, capture) = try prepare(executable, arguments, environment: environment, currentDirectory: currentDirectory)
        let exited = AsyncStream<Void>.makeStream()
        process.terminationHandler = { _ in exited.continuation.finish() }
        try process.run()
        let finishedInTime = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for await _ in exited.stream {}
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if !finishedInTime {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw TestFailure("\(executable) \(arguments.joined(separator: " ")) ran longer than \(timeout)")
        }
        return try capture.result(status: process.terminationStatus)
    }

    /// The blocking form, for the few places that cannot await (static initializers).
    public static func runBlocking(_ executable: String, _ arguments: [String]) throws -> Result {
        let (process, capture) = try prepare(executable, arguments, environment: nil, currentDirectory: nil)
        try process.run()
        process.waitUntilExit()
        return try capture.result(status: process.terminationStatus)
    }

    private static func prepare(
        _ executable: String, _ arguments: [String], environment: [String: String]?, currentDirectory: String?
    ) throws -> (Process, Capture) {
        let process = Process()
        if executable.contains("/") {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [executable] + arguments
        }
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        if let currentDirectory {
            process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory)
        }
        let capture = try Capture()
        process.standardOutput = capture.stdout
        process.standardError = capture.stderr
        process.standardInput = FileHandle.nullDevice
        return (process, capture)
    }

    /// Output goes to temporary files rather than pipes, so a child that prints more than a pipe
    /// holds never blocks.
    private final class Capture {
        let folder: TemporaryDirectory
        let stdout: FileHandle
        let stderr: FileHandle

        init() throws {
            folder = try TemporaryDirectory(prefix: "child-output")
            try Data().write(to: folder.url.appending(path: "stdout"))
            try Data().write(to: folder.url.appending(path: "stderr"))
            stdout = try FileHandle(forWritingTo: folder.url.appending(path: "stdout"))
            stderr = try FileHandle(forWritingTo: folder.url.appending(path: "stderr"))
        }

        func result(status: Int32) throws -> Result {
            try? stdout.close()
            try? stderr.close()
            return Result(
                status: status,
                stdout: try String(contentsOf: folder.url.appending(path: "stdout"), encoding: .utf8),
                stderr: try String(contentsOf: folder.url.appending(path: "stderr"), encoding: .utf8))
        }
    }
}

/// Runs a shell command line in `folder`; throws with its stderr when it fails.
public func shell(_ command: String, in folder: URL) async throws {
    let result = try await ChildProcess.run("/bin/sh", ["-c", command], currentDirectory: folder.path)
    guard result.status == 0 else {
        throw TestFailure("`\(command)` failed: \(result.stderr)")
    }
}

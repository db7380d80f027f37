import Foundation
import NIOConcurrencyHelpers

/// A child process whose stderr lines can be awaited as they come (to act at a precise moment,
/// such as killing an updater once it says it is installing).
public final class LiveProcess: Sendable {
    private let process: Process
    private let exited = NIOLockedValueBox<Int32?>(nil)
    /// The child's stderr, line by line, ending when the child closes it.
    public let stderrLines: AsyncStream<String>
    private let exitStream: AsyncStream<Int32>

    public init(_ executable: String, _ arguments: [String], currentDirectory: String? = nil) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let currentDirectory {
            process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory)
        }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        let pipe = Pipe()
        process.standardError = pipe
        let (lines, lineContinuation) = AsyncStream<String>.makeStream()
        let (exits, exitContinuation) = AsyncStream<Int32>.makeStream()
        let exited = self.exited
        process.terminationHandler = { finished in
            exited.withLockedValue { $0 = finished.terminationStatus }
            exitContinuation.yield(finished.terminationStatus)
            exitContinuation.finish()
        }
        self.process = process
        self.stderrLines = lines
        self.exitStream = exits
        try process.run()
        // A thread of its own reads stderr to its end, with blocking reads. Not
        // `readabilityHandler`, a dispatch read source torn down by whoever releases the handle
        // last: a full `make tsan` run died once in libdispatch's event loop
        // (`_dispatch_event_loop_drain`, SEGV) with such sources live; this involves none.
        let reader = pipe.fileHandleForReading
        Thread.detachNewThread {
            var pending = Data()
            while case let data = reader.availableData, !data.isEmpty {
                pending.append(data)
                while let newline = pending.firstIndex(of: 0x0A) {
                    lineContinuation.yield(String(decoding: pending[..<newline], as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
            }
            lineContinuation.finish()
            try? reader.close()
        }
    }

    public var pid: Int32 { process.processIdentifier }

    /// Sends a signal to the child.
    public func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// The child's exit status (or signal), once it has exited.
    public func waitForExit(timeout: Duration = .seconds(120)) async throws -> Int32 {
        try await withThrowingTaskGroup(of: Int32.self) { group in
            group.addTask {
                for await status in self.exitStream { return status }
                return self.exited.withLockedValue { $0 } ?? -1
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                self.signal(SIGKILL)
                throw TestFailure("the child ran longer than \(timeout)")
            }
            let status = try await group.next() ?? -1
            group.cancelAll()
            return status
        }
    }
}

/// How a child process ended.
public enum TerminationStatus: Sendable, Hashable, CustomStringConvertible {
    /// It called `exit` with this code (0–255).
    case exited(Int32)
    /// It was killed by this signal (9 for SIGKILL, 15 for SIGTERM, …).
    case signaled(Int32)

    /// The seed's `exitcode`: the exit code, or −N after death by signal N.
    public var seedExitCode: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let signal): -signal
        }
    }

    /// A shell's `$?`: the exit code, or 128 + N after death by signal N.
    public var shellExitCode: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let signal): 128 + signal
        }
    }

    /// Whether it exited with code 0.
    public var isSuccess: Bool { self == .exited(0) }

    var isSignal: Bool {
        if case .signaled = self { true } else { false }
    }

    public var description: String {
        switch self {
        case .exited(let code): "exited with code \(code)"
        case .signaled(let signal): "killed by signal \(signal)\(Self.signalNames[signal].map { " (\($0))" } ?? "")"
        }
    }

    private static let signalNames: [Int32: String] = [
        1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE",
        9: "SIGKILL", 11: "SIGSEGV", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
    ]
}

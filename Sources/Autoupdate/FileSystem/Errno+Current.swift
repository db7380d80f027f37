import Glibc
import SystemPackage

extension Errno {
    /// The calling thread's `errno`, as a typed value for messages and `underlying` causes.
    static var current: Errno { Errno(rawValue: errno) }
}

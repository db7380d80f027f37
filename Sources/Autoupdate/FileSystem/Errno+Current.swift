#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

extension Errno {
    /// The calling thread's `errno`, as a typed value for messages and `underlying` causes.
    static var current: Errno { Errno(rawValue: errno) }
}

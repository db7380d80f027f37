import CAutoupdateSystem
import Dispatch
import Foundation
import Glibc
import SystemPackage

/// Writes extracted files' contents and closes them on a thread of its own, so that the
/// extraction thread goes on decoding (zip entries inflate there) while the kernel copies the
/// last bytes into the page cache.
///
/// Operations run in the order given. Creating files, folders and links stays with the caller
/// (its checks need the answers at once); what is handed over here needs none. A failure is
/// kept, every later operation only closes its file, and the caller gets the failure at its next
/// call or at ``drain()``. Bounded: at most ``byteLimit`` bytes and ``fileLimit`` files (open
/// descriptors) wait. Unthreaded (one core, or a format decoded on threads of its own already),
/// operations run at once on the caller's thread.
final class WriteBehind {
    static let byteLimit = 4 << 20
    static let fileLimit = 64

    private enum Operation: Sendable {
        case write(descriptor: Int32, bytes: [UInt8], entry: String)
        /// A hole: the file grows by this many bytes that are never written.
        case skip(descriptor: Int32, count: Int64, entry: String)
        case close(descriptor: Int32, attributes: FileAttributes?, startsWriteBack: Bool)
    }

    /// What a completed file gets before it is closed.
    struct FileAttributes: Sendable {
        let mode: UInt32
        let modificationTime: Int64?
        let entry: String
    }

    private struct Shared {
        var operations: [Operation] = []
        var queuedBytes = 0
        var queuedFiles = 0
        /// The worker is running an operation it took.
        var busy = false
        var failure: AutoupdateError?
        var stopping = false
    }

    private let shared: Guarded<Shared>?
    private let exited = DispatchSemaphore(value: 0)
    /// Unthreaded: the first failure of an operation run at once.
    private var inlineFailure: AutoupdateError?

    /// - Parameter threaded: Whether a thread of its own runs the operations.
    init(threaded: Bool) {
        guard threaded else {
            shared = nil
            return
        }
        let shared = Guarded(Shared())
        self.shared = shared
        let thread = Thread { [exited] in
            Self.work(shared)
            exited.signal()
        }
        thread.name = "autoupdate.write"
        thread.start()
    }

    deinit {
        guard let shared else { return }
        // Whatever is queued is still run: every descriptor gets closed.
        shared.withLock { $0.stopping = true }
        exited.wait()
    }

    /// Appends `bytes` to the file.
    func write(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, entry: String) throws {
        guard shared != nil else {
            // At once, from the caller's buffer (no copy).
            inlineFailure = inlineFailure ?? Self.write(descriptor, bytes, entry: entry)
            if let inlineFailure { throw inlineFailure }
            return
        }
        try submit(.write(descriptor: descriptor, bytes: [UInt8](bytes), entry: entry), bytes: bytes.count, files: 0)
    }

    /// Appends a hole of `count` bytes to the file (it reads as zeros and takes no disk space).
    func skip(_ descriptor: Int32, _ count: Int64, entry: String) throws {
        try submit(.skip(descriptor: descriptor, count: count, entry: entry), bytes: 0, files: 0)
    }

    /// Gives the file its mode and time (when `attributes` are given), starts its write-back if
    /// asked to, then closes it.
    func close(_ descriptor: Int32, attributes: FileAttributes?, startsWriteBack: Bool) throws {
        try submit(.close(descriptor: descriptor, attributes: attributes, startsWriteBack: startsWriteBack), bytes: 0, files: 1)
    }

    /// Waits until every operation given so far has run; throws the first failure.
    func drain() throws {
        guard let shared else {
            if let inlineFailure { throw inlineFailure }
            return
        }
        let failure = shared.wait { shared -> AutoupdateError?? in
            shared.operations.isEmpty && !shared.busy ? .some(shared.failure) : nil
        }
        if let failure {
            throw failure
        }
    }

    private func submit(_ operation: Operation, bytes: Int, files: Int) throws {
        guard let shared else {
            inlineFailure = Self.run(operation, after: inlineFailure)
            if let inlineFailure { throw inlineFailure }
            return
        }
        let failure = shared.wait { shared -> AutoupdateError?? in
            // Over the limits only when nothing waits, so that a large write always goes in.
            let full = !shared.operations.isEmpty
                && (shared.queuedBytes + bytes > Self.byteLimit || shared.queuedFiles + files > Self.fileLimit)
            if shared.failure == nil && full {
                return nil
            }
            shared.operations.append(operation)
            shared.queuedBytes += bytes
            shared.queuedFiles += files
            return .some(shared.failure)
        }
        if let failure {
            throw failure
        }
    }

    // MARK: The writing thread

    private static func work(_ shared: Guarded<Shared>) {
        var failure: AutoupdateError?
        while true {
            let next = shared.wait { shared -> Operation?? in
                if let operation = shared.operations.first {
                    shared.operations.removeFirst()
                    shared.busy = true
                    return .some(operation)
                }
                return shared.stopping ? .some(nil) : nil
            }
            guard let operation = next else { return }
            failure = run(operation, after: failure)
            // Done, in one change that wakes the waiters (``drain()`` waits for exactly this).
            shared.withLock { shared in
                switch operation {
                case .write(_, let bytes, _): shared.queuedBytes -= bytes.count
                case .skip: break
                case .close: shared.queuedFiles -= 1
                }
                shared.failure = shared.failure ?? failure
                shared.busy = false
            }
        }
    }

    /// Runs one operation; after a failure, only closes.
    private static func run(_ operation: Operation, after failure: AutoupdateError?) -> AutoupdateError? {
        switch operation {
        case .write(let descriptor, let bytes, let entry):
            guard failure == nil else { return failure }
            return bytes.withUnsafeBytes { write(descriptor, $0, entry: entry) }
        case .skip(let descriptor, let count, let entry):
            guard failure == nil else { return failure }
            // Past the end, then the size set there: the gap is a hole, and a later write goes on from it.
            let end = lseek(descriptor, off_t(count), SEEK_CUR)
            guard end >= 0, ftruncate(descriptor, end) == 0 else {
                return fileFailure("cannot leave a hole", entry: entry, errno: .current)
            }
            return nil
        case .close(let descriptor, let attributes, let startsWriteBack):
            defer {
                if startsWriteBack && failure == nil {
                    _ = autoupdate_start_writeback(descriptor)
                }
                Glibc.close(descriptor)
            }
            guard failure == nil, let attributes else { return failure }
            if case .failure(let errno) = Syscall.changeMode(descriptor, mode_t(attributes.mode)) {
                return fileFailure("cannot set the mode", entry: attributes.entry, errno: errno)
            }
            if let time = attributes.modificationTime, case .failure(let errno) = Syscall.setModificationTime(descriptor, time) {
                return fileFailure("cannot set the modification time", entry: attributes.entry, errno: errno)
            }
            return nil
        }
    }

    private static func write(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, entry: String) -> AutoupdateError? {
        if case .failure(let errno) = Syscall.writeAll(descriptor, bytes) {
            return fileFailure("cannot write", entry: entry, errno: errno)
        }
        return nil
    }

    private static func fileFailure(_ what: String, entry: String, errno: Errno) -> AutoupdateError {
        AutoupdateError(.fileSystem, "extracting \(quoted(entry)): \(what) (\(errno))", underlying: errno)
    }
}

@available(*, unavailable)
extension WriteBehind: Sendable {}

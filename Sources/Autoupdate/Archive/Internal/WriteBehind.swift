import CAutoupdateSystem
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

/// Writes extracted files' contents and closes them on a thread of its own, so that the
/// extraction thread goes on decoding (zip entries inflate there) while the kernel copies the
/// last bytes into the page cache.
///
/// Operations run in the order given. Creating files, folders and links stays with the caller
/// (its checks need the answers at once); what is handed over here needs none. A failure is
/// kept, every later operation only closes its file, and the caller gets the failure at its next
/// call or at ``drain()``. Bounded: queued operations weigh about ``byteLimit`` at most, a file
/// to close weighing a ``fileLimit``th of it, so about ``byteLimit`` bytes or ``fileLimit`` open
/// descriptors wait. Unthreaded (one core, or a format decoded on threads of its own already),
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

    /// Queued operations weigh their bytes; a close weighs a share of the byte limit, so that
    /// at most ``fileLimit`` open files wait.
    private static let closeWeight = byteLimit / fileLimit

    /// The threaded form's parts.
    private struct Worker {
        let operations: Handoff<Queued>
        let thread: BackgroundThread<Void>
        /// The first failure of an operation run on the thread.
        let failure: Locked<AutoupdateError?>
    }

    private enum Queued: Sendable {
        case operation(Operation)
        /// ``drain()``'s marker: woken when every operation before it has run.
        case barrier(ThreadParker)
    }

    private let worker: Worker?
    /// Unthreaded: the first failure of an operation run at once.
    private var inlineFailure: AutoupdateError?

    /// - Parameter threaded: Whether a thread of its own runs the operations.
    init(threaded: Bool) {
        guard threaded else {
            worker = nil
            return
        }
        let operations = Handoff<Queued>(.halving(Self.byteLimit))
        let failure = Locked<AutoupdateError?>(nil)
        let thread = BackgroundThread.start(name: "autoupdate.write") {
            Self.work(operations, failure: failure)
        }
        worker = Worker(operations: operations, thread: thread, failure: failure)
    }

    deinit {
        guard let worker else { return }
        // Whatever is queued is still run: every descriptor gets closed.
        worker.operations.finish()
        worker.thread.join()
    }

    /// Appends `bytes` to the file.
    func write(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, entry: String) throws {
        guard worker != nil else {
            // At once, from the caller's buffer (no copy).
            inlineFailure = inlineFailure ?? Self.write(descriptor, bytes, entry: entry)
            if let inlineFailure { throw inlineFailure }
            return
        }
        try submit(.write(descriptor: descriptor, bytes: [UInt8](bytes), entry: entry), weight: bytes.count)
    }

    /// Appends a hole of `count` bytes to the file (it reads as zeros and takes no disk space).
    func skip(_ descriptor: Int32, _ count: Int64, entry: String) throws {
        try submit(.skip(descriptor: descriptor, count: count, entry: entry), weight: 0)
    }

    /// Gives the file its mode and time (when `attributes` are given), starts its write-back if
    /// asked to, then closes it.
    func close(_ descriptor: Int32, attributes: FileAttributes?, startsWriteBack: Bool) throws {
        try submit(.close(descriptor: descriptor, attributes: attributes, startsWriteBack: startsWriteBack), weight: Self.closeWeight)
    }

    /// Waits until every operation given so far has run; throws the first failure.
    func drain() throws {
        guard let worker else {
            if let inlineFailure { throw inlineFailure }
            return
        }
        let reached = ThreadParker()
        try worker.operations.sendBlocking(.barrier(reached), weight: 0)
        reached.park()
        if let failure = worker.failure.withLock({ $0 }) {
            throw failure
        }
    }

    private func submit(_ operation: Operation, weight: Int) throws {
        guard let worker else {
            inlineFailure = Self.run(operation, after: inlineFailure)
            if let inlineFailure { throw inlineFailure }
            return
        }
        // Queued even after a failure: the thread still closes the file.
        try worker.operations.sendBlocking(.operation(operation), weight: weight)
        if let failure = worker.failure.withLock({ $0 }) {
            throw failure
        }
    }

    // MARK: The writing thread

    private static func work(_ operations: Handoff<Queued>, failure shared: Locked<AutoupdateError?>) {
        var failure: AutoupdateError?
        // Ends when the owner has finished the input and everything queued has run.
        while let next = try? operations.nextBlocking() {
            switch next {
            case .barrier(let reached):
                reached.wake()
            case .operation(let operation):
                let before = failure
                failure = run(operation, after: failure)
                if before == nil, let failure {
                    shared.withLock { $0 = $0 ?? failure }
                }
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
            return closeFile(descriptor, attributes: attributes, startsWriteBack: startsWriteBack, after: failure)
        }
    }

    /// Gives a complete file its mode and time (when `attributes` are given and nothing failed
    /// before), starts its write-back if asked to, then closes it.
    static func closeFile(
        _ descriptor: Int32, attributes: FileAttributes?, startsWriteBack: Bool, after failure: AutoupdateError?
    ) -> AutoupdateError? {
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

    static func write(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, entry: String) -> AutoupdateError? {
        if case .failure(let errno) = Syscall.writeAll(descriptor, bytes) {
            return fileFailure("cannot write", entry: entry, errno: errno)
        }
        return nil
    }

    private static func fileFailure(_ what: String, entry: String, errno: Errno) -> AutoupdateError {
        AutoupdateError.extraction(entry, what, errno)
    }
}

@available(*, unavailable)
extension WriteBehind: Sendable {}

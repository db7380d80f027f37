#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Inflates zip entries handed on whole (``ZipDeflatedEntry``) on threads of their own, one per
/// core, each thread writing, finishing and closing its entry's file: a zip's entries are
/// independent, so the reader stays one streaming pass over the archive while the cores inflate.
///
/// Bounded: the compressed bytes waiting weigh at most about ``queueLimit`` (a job larger than
/// that is taken when nothing else waits), and each thread holds one job and one output buffer.
/// Jobs start in the order given; the first failure *in the archive's order* is kept (a job that
/// started earlier may fail after a later one did), jobs taken after a failure only close their
/// file, and ``drain()`` reports it once every job has ended, so an archive fails with the same
/// error however its entries were spread over the threads.
final class InflatePool {
    /// The compressed bytes that may wait for a thread.
    static let queueLimit = 4 << 20
    /// The largest entry (compressed) handed on: a larger one inflates on the reader's thread,
    /// which keeps what one job holds small.
    static let entryLimit: Int64 = 2 << 20

    struct Job: Sendable {
        /// The entry's place in the archive.
        let number: Int
        let descriptor: Int32
        let data: ZipDeflatedEntry
        let attributes: WriteBehind.FileAttributes
        let startsWriteBack: Bool
    }

    private struct State: Sendable {
        var jobs: [Job] = []
        var head = 0
        var queuedBytes = 0
        /// Jobs given and not yet ended.
        var outstanding = 0
        var finished = false
        var idle: [ThreadParker] = []
        /// The owner, waiting for room or for every job to end.
        var ownerWaiting = false
        var failure: (number: Int, error: AutoupdateError)?
        /// Jobs taken from now on only close their file.
        var stopping = false

        mutating func takeJob() -> Job? {
            guard head < jobs.count else { return nil }
            let job = jobs[head]
            head += 1
            queuedBytes -= job.data.compressed.count
            if head >= 64, head * 2 >= jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            return job
        }
    }

    private let state = Locked(State())
    private let owner = ThreadParker()
    private var threads: [BackgroundThread<Void>] = []

    /// - Parameter threads: How many threads inflate (one per core).
    init(threads count: Int) {
        threads = (0..<max(1, count)).map { _ in
            BackgroundThread.start(name: "autoupdate.inflate") { [state, owner] in
                Self.work(state, owner: owner)
            }
        }
    }

    deinit {
        // Every job given still ends (each closes its file) before the threads do.
        let idle = state.withLock { state in
            state.finished = true
            defer { state.idle = [] }
            return state.idle
        }
        idle.forEach { $0.wake() }
        threads.forEach { $0.join() }
    }

    /// Gives a job to the threads, waiting while the queue is full.
    ///
    /// - Throws: The first failure so far, in the archive's order, once every job given has
    ///   ended (this job is then not given: its file is closed here).
    func submit(_ job: Job) throws {
        while true {
            let outcome = state.withLock { state -> (accepted: Bool, failed: Bool, wake: ThreadParker?) in
                if state.failure != nil {
                    return (false, true, nil)
                }
                let weight = job.data.compressed.count
                if state.queuedBytes > 0, state.queuedBytes + weight > Self.queueLimit {
                    state.ownerWaiting = true
                    return (false, false, nil)
                }
                state.jobs.append(job)
                state.queuedBytes += weight
                state.outstanding += 1
                return (true, false, state.idle.popLast())
            }
            if outcome.accepted {
                outcome.wake?.wake()
                return
            }
            if outcome.failed {
                close(job.descriptor)
                try drain()
                return
            }
            owner.park()
        }
    }

    /// Waits until every job given so far has ended; throws the first failure in the archive's order.
    func drain() throws {
        while true {
            let done = state.withLock { state -> Bool in
                guard state.outstanding > 0 else { return true }
                state.ownerWaiting = true
                return false
            }
            if done { break }
            owner.park()
        }
        if let failure = state.withLock({ $0.failure }) {
            throw failure.error
        }
    }

    /// Jobs not yet started only close their files (an extraction being rolled back).
    func stop() {
        state.withLock { $0.stopping = true }
    }

    // MARK: The inflating threads

    private static func work(_ state: Locked<State>, owner: ThreadParker) {
        let parker = ThreadParker()
        let decoder: RawDeflateDecoder
        do {
            decoder = try RawDeflateDecoder()
        } catch {
            // zlib could not start (out of memory): every job this thread takes fails with it.
            let failure = error as? AutoupdateError ?? AutoupdateError(.corruptArchive, "zlib could not start a decoder")
            loop(state, owner: owner, parker: parker) { job in
                close(job.descriptor)
                return failure
            }
            return
        }
        loop(state, owner: owner, parker: parker) { job in run(job, decoder: decoder) }
    }

    private enum Next {
        case job(Job, skip: Bool, wakeOwner: Bool)
        case wait
        case end
    }

    private static func loop(_ state: Locked<State>, owner: ThreadParker, parker: ThreadParker, _ body: (Job) -> AutoupdateError?) {
        while true {
            let next = state.withLock { state -> Next in
                if let job = state.takeJob() {
                    let wakeOwner = state.ownerWaiting
                    state.ownerWaiting = false
                    return .job(job, skip: state.failure != nil || state.stopping, wakeOwner: wakeOwner)
                }
                if state.finished { return .end }
                state.idle.append(parker)
                return .wait
            }
            switch next {
            case .end:
                return
            case .wait:
                parker.park()
            case .job(let job, let skip, let wakeOwner):
                // Room in the queue now.
                if wakeOwner { owner.wake() }
                let failure = skip ? { close(job.descriptor); return nil }() : body(job)
                let wake = state.withLock { state -> Bool in
                    if let failure, state.failure.map({ job.number < $0.number }) ?? true {
                        state.failure = (job.number, failure)
                    }
                    state.outstanding -= 1
                    let wake = state.ownerWaiting
                    state.ownerWaiting = false
                    return wake
                }
                if wake { owner.wake() }
            }
        }
    }

    /// Inflates one entry into its file and closes it.
    private static func run(_ job: Job, decoder: RawDeflateDecoder) -> AutoupdateError? {
        var failure: AutoupdateError?
        do {
            try job.data.inflate(with: decoder) { bytes in
                if let error = WriteBehind.write(job.descriptor, bytes, entry: job.attributes.entry) {
                    throw error
                }
            }
        } catch let error as AutoupdateError {
            failure = error
        } catch {
            failure = AutoupdateError(.corruptArchive, "zip entry \(quoted(job.data.name)): \(error)")
        }
        return WriteBehind.closeFile(job.descriptor, attributes: job.attributes, startsWriteBack: job.startsWriteBack, after: failure)
    }
}

@available(*, unavailable)
extension InflatePool: Sendable {}

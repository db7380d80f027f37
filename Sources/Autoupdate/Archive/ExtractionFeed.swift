import Dispatch

/// The hand-off from the task that receives an archive (from a download, say) to the thread that
/// extracts it: a bounded buffer, so a fast network waits for a slow disk instead of filling memory.
///
/// A value type that holds data, never behaviour; ``ExtractionFeed`` applies its actions.
struct FeedStateMachine<Producer: Sendable>: Sendable {
    enum Stop: Sendable {
        case cancelled
        case workerEnded
    }

    private var buffer: [[UInt8]] = []
    private var bufferedBytes = 0
    private var producer: Producer?
    private var workerWaiting = false
    private var inputEnded = false
    private(set) var stop: Stop?
    let limit: Int

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    enum SendAction {
        /// Go on; wake the worker first if asked.
        case proceed(wakeWorker: Bool)
        /// The buffer is full: wait (``producerWaits(_:)``) after waking the worker if asked.
        case waitForSpace(wakeWorker: Bool)
        /// The extraction has stopped (cancelled, or the worker ended).
        case stopped(Stop)
    }

    mutating func send(_ chunk: [UInt8]) -> SendAction {
        if let stop {
            return .stopped(stop)
        }
        buffer.append(chunk)
        bufferedBytes += chunk.count
        let wake = workerWaiting
        workerWaiting = false
        return bufferedBytes >= limit ? .waitForSpace(wakeWorker: wake) : .proceed(wakeWorker: wake)
    }

    enum WaitAction {
        case suspended
        case resumeNow
        case stopped(Stop)
    }

    mutating func producerWaits(_ producer: Producer) -> WaitAction {
        if let stop {
            return .stopped(stop)
        }
        guard bufferedBytes >= limit else {
            return .resumeNow
        }
        self.producer = producer
        return .suspended
    }

    /// The input is complete; returns whether to wake the worker.
    mutating func endInput() -> Bool {
        inputEnded = true
        defer { workerWaiting = false }
        return workerWaiting
    }

    enum NextAction {
        /// Extract this chunk; resume the waiting producer first, if any.
        case chunk([UInt8], resumeProducer: Producer?)
        /// The input is complete.
        case end
        /// Nothing yet: wait for a wake-up and ask again.
        case wait
        case cancelled
    }

    mutating func workerNext() -> NextAction {
        if case .cancelled = stop {
            return .cancelled
        }
        guard buffer.isEmpty else {
            let chunk = buffer.removeFirst()
            bufferedBytes -= chunk.count
            var resume: Producer?
            if bufferedBytes <= limit / 2 {
                resume = producer
                producer = nil
            }
            return .chunk(chunk, resumeProducer: resume)
        }
        if inputEnded {
            return .end
        }
        workerWaiting = true
        return .wait
    }

    /// Stops the extraction; returns a waiting producer to resume. (The owner wakes the worker
    /// whether it waits or not: a surplus wake-up is harmless once it stops.)
    mutating func cancel() -> Producer? {
        guard stop == nil else { return nil }
        stop = .cancelled
        defer {
            producer = nil
            workerWaiting = false
            buffer = []
        }
        return producer
    }

    /// The worker has ended (done or failed); returns a waiting producer to resume.
    mutating func workerEnded() -> Producer? {
        if stop == nil {
            stop = .workerEnded
        }
        defer { producer = nil }
        buffer = []
        return producer
    }
}

/// The shared end of ``FeedStateMachine``: `send` from a task, `next` from the worker thread.
final class ExtractionFeed: Sendable {
    typealias Producer = CheckedContinuation<Void, any Error>

    /// Thrown by ``send(_:)`` once the worker has ended; the caller then awaits the worker's result.
    struct WorkerEnded: Error {}

    private let machine: Locked<FeedStateMachine<Producer>>
    private let workerWakeup = DispatchSemaphore(value: 0)

    init(limit: Int) {
        machine = Locked(FeedStateMachine(limit: limit))
    }

    var isCancelled: Bool {
        machine.withLock { if case .cancelled = $0.stop { true } else { false } }
    }

    /// Queues a chunk, waiting while the buffer is full.
    ///
    /// - Throws: `CancellationError` when cancelled, ``WorkerEnded`` when the worker stopped.
    func send(_ chunk: [UInt8]) async throws {
        let action = machine.withLock { $0.send(chunk) }
        switch action {
        case .proceed(let wake):
            if wake { workerWakeup.signal() }
            return
        case .stopped(let stop):
            throw Self.error(for: stop)
        case .waitForSpace(let wake):
            if wake { workerWakeup.signal() }
        }
        try await withCheckedThrowingContinuation { (continuation: Producer) in
            switch machine.withLock({ $0.producerWaits(continuation) }) {
            case .suspended: break
            case .resumeNow: continuation.resume()
            case .stopped(let stop): continuation.resume(throwing: Self.error(for: stop))
            }
        }
    }

    func endInput() {
        if machine.withLock({ $0.endInput() }) {
            workerWakeup.signal()
        }
    }

    func cancel() {
        let producer = machine.withLock { $0.cancel() }
        workerWakeup.signal()
        producer?.resume(throwing: CancellationError())
    }

    /// The worker's next chunk, blocking until one arrives; `nil` at the end of the input.
    ///
    /// - Throws: `CancellationError` once the feed is cancelled.
    func next() throws -> [UInt8]? {
        while true {
            switch machine.withLock({ $0.workerNext() }) {
            case .chunk(let chunk, let producer):
                producer?.resume()
                return chunk
            case .end:
                return nil
            case .cancelled:
                throw CancellationError()
            case .wait:
                workerWakeup.wait()
            }
        }
    }

    /// The worker has ended: a producer waiting for space is told to stop.
    func workerEnded() {
        machine.withLock { $0.workerEnded() }?.resume(throwing: WorkerEnded())
    }

    private static func error(for stop: FeedStateMachine<Producer>.Stop) -> any Error {
        switch stop {
        case .cancelled: CancellationError()
        case .workerEnded: WorkerEnded()
        }
    }
}

/// A value set once by a thread and awaited by tasks.
final class OneShot<Value: Sendable>: Sendable {
    private enum State {
        case waiting([CheckedContinuation<Value, Never>])
        case done(Value)
    }

    private let state = Locked(State.waiting([]))

    func set(_ value: Value) {
        let waiters = state.withLock { state -> [CheckedContinuation<Value, Never>] in
            guard case .waiting(let waiters) = state else { return [] }
            state = .done(value)
            return waiters
        }
        waiters.forEach { $0.resume(returning: value) }
    }

    var value: Value {
        get async {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Value? in
                    switch state {
                    case .done(let value):
                        return value
                    case .waiting(var waiters):
                        waiters.append(continuation)
                        state = .waiting(waiters)
                        return nil
                    }
                }
                if let ready {
                    continuation.resume(returning: ready)
                }
            }
        }
    }
}

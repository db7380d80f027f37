import Dispatch

/// A party waiting on a ``Handoff``: a suspended task or a parked thread of ours.
enum Parker: Sendable, Equatable {
    case task(CheckedContinuation<Void, Never>)
    case thread(ThreadParker)

    func wake() {
        switch self {
        case .task(let continuation): continuation.resume()
        case .thread(let parker): parker.wake()
        }
    }

    /// Threads are the same waiter when they are the same parker; each task suspension is new.
    static func == (lhs: Parker, rhs: Parker) -> Bool {
        if case .thread(let a) = lhs, case .thread(let b) = rhs {
            return a === b
        }
        return false
    }
}

/// Where one of our threads sleeps until it is woken. A wake-up may come after the wait it was
/// meant for ended (a timed wait, a re-check): every waiter therefore asks its state machine
/// again after waking, and a surplus wake-up costs one question.
final class ThreadParker: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)

    func park() {
        semaphore.wait()
    }

    /// - Returns: `false` when `deadline` passed first.
    func park(until deadline: ContinuousClock.Instant) -> Bool {
        let left = deadline - ContinuousClock.now
        guard left > .zero else { return false }
        let nanoseconds = left.components.seconds * 1_000_000_000 + left.components.attoseconds / 1_000_000_000
        return semaphore.wait(timeout: .now() + .nanoseconds(Int(clamping: nanoseconds))) == .success
    }

    func wake() {
        semaphore.signal()
    }
}

/// The owner of a ``HandoffStateMachine``: the one bounded hand-off every producer/consumer pair
/// uses, from a task or from a thread of ours on either side.
///
/// Each event runs under one lock and the resulting wake-ups run after it is released. Task-side
/// calls turn task cancellation into ``cancel()``; thread-side calls block only that thread.
final class Handoff<Element: Sendable>: Sendable {
    typealias Machine = HandoffStateMachine<Element, Parker>

    /// Thrown to a producer once the consumer has ended early (``consumerEnded()``).
    struct ConsumerEnded: Error {}

    private let machine: Locked<Machine>
    private let onCancel: (@Sendable () -> Void)?
    /// The parkers of the thread-side calls that pass none (one thread per side).
    private let producerParker = ThreadParker()
    private let consumerParker = ThreadParker()

    /// - Parameters:
    ///   - cancellationWaitsForProducer: After ``cancel()``, consumers wait for the producer's
    ///     ``finish(failure:)`` before they see the cancellation.
    ///   - onCancel: Runs once, on the first ``cancel()``, after parked parties are woken: stops
    ///     the producer wherever else it waits (in libcurl's poll, say).
    init(_ watermarks: Machine.Watermarks, cancellationWaitsForProducer: Bool = false, onCancel: (@Sendable () -> Void)? = nil) {
        machine = Locked(Machine(watermarks: watermarks, cancellationWaitsForProducer: cancellationWaitsForProducer))
        self.onCancel = onCancel
    }

    var isCancelled: Bool {
        machine.withLock { $0.isCancelled }
    }

    /// Whether the hand-off takes no more elements (cancelled, or the consumer ended).
    var isStopped: Bool {
        machine.withLock { $0.stop != nil }
    }

    // MARK: Producer

    /// Sends from a task, suspending while the buffer is full.
    ///
    /// - Throws: `CancellationError` (the task or the hand-off was cancelled), ``ConsumerEnded``.
    ///   A send that throws while waiting for space had its element accepted: a consumer may
    ///   have taken it before the stop. Either way the producer stops.
    func send(_ element: Element, weight: Int) async throws {
        guard try accept(element, weight: weight) else { return }
        try await withTaskCancellationHandler {
            while true {
                switch await park({ $0.parkProducer($1) }) {
                case .resume?: return
                case .stopped(let stop)?: throw Self.error(for: stop)
                case .parked?, nil: continue
                }
            }
        } onCancel: {
            cancel()
        }
    }

    /// Sends from a thread of ours, parking it while the buffer is full.
    ///
    /// - Throws: `CancellationError`, ``ConsumerEnded``.
    func sendBlocking(_ element: Element, weight: Int) throws {
        guard try accept(element, weight: weight) else { return }
        while true {
            switch machine.withLock({ $0.parkProducer(.thread(producerParker)) }) {
            case .resume: return
            case .stopped(let stop): throw Self.error(for: stop)
            case .parked: producerParker.park()
            }
        }
    }

    /// Queues the element; returns whether the producer must wait for space.
    private func accept(_ element: Element, weight: Int) throws -> Bool {
        switch machine.withLock({ $0.send(element, weight: weight) }) {
        case .proceed(let wake):
            wake?.wake()
            return false
        case .park(let wake):
            wake?.wake()
            return true
        case .stopped(let stop):
            throw Self.error(for: stop)
        }
    }

    /// Sleeps the producer thread for `duration`, or less if the hand-off stops meanwhile.
    ///
    /// - Returns: `false` when it stopped.
    func sleepBlocking(for duration: Duration) -> Bool {
        let deadline = ContinuousClock.now + duration
        while true {
            switch machine.withLock({ $0.parkProducerUntilStopped(.thread(producerParker)) }) {
            case .stopped:
                return false
            case .resume, .parked:
                if !producerParker.park(until: deadline) {
                    machine.withLock { $0.unparkProducer(.thread(producerParker)) }
                    return !isStopped
                }
            }
        }
    }

    /// The input is complete, or failed with `failure`; after a ``cancel()``, the producer's
    /// acknowledgement.
    func finish(failure: (any Error)? = nil) {
        machine.withLock { $0.finish(failure: failure) }.forEach { $0.wake() }
    }

    // MARK: Consumer

    /// The next element from a task; `nil` at the end of the input.
    ///
    /// - Throws: The producer's failure, or `CancellationError`. Cancelling the task cancels the
    ///   hand-off.
    func next() async throws -> Element? {
        try await withTaskCancellationHandler {
            while true {
                if let outcome = try take() {
                    return outcome.element
                }
                _ = await park { $0.parkConsumer($1) }
            }
        } onCancel: {
            cancel()
        }
    }

    /// The next element, parking this thread until one arrives; `nil` at the end of the input.
    ///
    /// - Parameter parker: This thread's parker, when several threads consume.
    /// - Throws: The producer's failure, or `CancellationError`.
    func nextBlocking(parker: ThreadParker? = nil) throws -> Element? {
        let parker = parker ?? consumerParker
        while true {
            if let outcome = try take() {
                return outcome.element
            }
            if case .parked = machine.withLock({ $0.parkConsumer(.thread(parker)) }) {
                parker.park()
            }
        }
    }

    /// What is there without waiting: an element, the end (`.some(nil)`), or nothing yet (`nil`).
    ///
    /// - Throws: The producer's failure, or `CancellationError`.
    func poll() throws -> Element?? {
        try take().map(\.element)
    }

    private struct Taken {
        var element: Element?
    }

    /// One `next` event: `nil` when the consumer must park.
    private func take() throws -> Taken? {
        switch machine.withLock({ $0.next() }) {
        case .element(let element, let wake):
            wake?.wake()
            return Taken(element: element)
        case .end:
            return Taken(element: nil)
        case .fail(let error):
            throw error
        case .cancelled:
            throw CancellationError()
        case .park:
            return nil
        }
    }

    // MARK: Stops

    /// Stops both sides: parked parties wake and see `CancellationError`.
    func cancel() {
        let action = machine.withLock { $0.cancel() }
        action.wake.forEach { $0.wake() }
        if action.isFirst {
            onCancel?()
        }
    }

    /// The consumer will take nothing more: the producer's sends throw ``ConsumerEnded``.
    func consumerEnded() {
        machine.withLock { $0.consumerEnded() }?.wake()
    }

    // MARK: Parking a task

    /// Registers the current task with `register`; returns its answer when the task need not
    /// wait, or `nil` once a wake-up has resumed it.
    private func park(_ register: (inout Machine, Parker) -> Machine.ParkAction) async -> Machine.ParkAction? {
        var immediate: Machine.ParkAction?
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let action = machine.withLock { register(&$0, .task(continuation)) }
            guard case .parked = action else {
                immediate = action
                continuation.resume()
                return
            }
        }
        return immediate
    }

    private static func error(for stop: Machine.Stop) -> any Error {
        switch stop {
        case .cancelled: CancellationError()
        case .consumerEnded: ConsumerEnded()
        }
    }
}

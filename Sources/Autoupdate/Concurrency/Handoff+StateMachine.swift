/// The state of a bounded hand-off from one producer to one or more consumers, as a value: every
/// producer/consumer pair of the runtime (a transfer thread and the task reading the download,
/// the task feeding an extraction and its thread, a decoder thread and its caller, the
/// extraction thread and its write-behind thread, the bzip2 block queue and its workers) is one
/// of these, owned by a ``Handoff``.
///
/// It holds data, never behaviour: its owner calls an event under its lock and applies the
/// returned action after leaving it (wakes a parked party). Waiters are tokens (`Waiter`), so
/// tests drive every transition with plain values.
///
/// The contract, after swift-nio's `NIOAsyncSequenceProducer` with a high/low watermark strategy:
/// - An element is always accepted; once the buffer weighs ``Watermarks/high`` or more, the
///   producer is told to park, and is woken when consumers have drained it to ``Watermarks/low``.
/// - ``finish(failure:)`` ends the input: consumers drain what is buffered, then see the end or the
///   failure, again at every later call (sticky, like a failed reader).
/// - ``cancel()`` stops both sides at once: the buffer is dropped, every parked party is woken and
///   sees the stop. With `cancellationWaitsForProducer`, consumers are told to park until the
///   producer has acknowledged (called ``finish(failure:)``): a cancelled download returns only
///   once its thread has released its sockets.
/// - ``consumerEnded()`` is the consumer going away early (an extraction that failed): the
///   producer's next send is refused, and a parked producer is woken to see that.
///
/// Parking is two-step (the event says `.park`, the owner registers with `park…(_:)`, which
/// checks again), so a waiter is registered under the same lock that judged it must wait: no
/// wake-up is lost. A woken party always asks again; a spurious wake-up costs one more question.
struct HandoffStateMachine<Element, Waiter: Equatable> {
    /// Bounds on the buffered weight (bytes, or any unit the owner chooses).
    struct Watermarks: Equatable, Sendable {
        /// At or above this, the producer parks after its send.
        let high: Int
        /// A parked producer is woken once the buffer is down to this.
        let low: Int

        init(high: Int, low: Int) {
            self.high = max(1, high)
            self.low = min(max(0, low), self.high - 1)
        }

        /// Parks at `limit`, wakes at half of it.
        static func halving(_ limit: Int) -> Watermarks {
            Watermarks(high: limit, low: limit / 2)
        }
    }

    /// Why the hand-off no longer takes elements.
    enum Stop: Equatable, Sendable {
        case cancelled
        case consumerEnded
    }

    /// Taken slots are emptied at once (`nil`), so a consumed element's memory goes with it,
    /// not when the array is next compacted.
    private var buffer: [(element: Element?, weight: Int)] = []
    /// The index of the first buffered element (taking from the front must not move the rest).
    private var head = 0
    private(set) var bufferedWeight = 0
    private var end: Result<Void, any Error>?
    private(set) var stop: Stop?
    private var producerFinished = false
    private var parkedProducer: Waiter?
    /// Whether the parked producer waits for space (woken at the low watermark) rather than only
    /// for a stop.
    private var producerWaitsForSpace = false
    private var parkedConsumers: [Waiter] = []
    let watermarks: Watermarks
    let cancellationWaitsForProducer: Bool

    init(watermarks: Watermarks, cancellationWaitsForProducer: Bool = false) {
        self.watermarks = watermarks
        self.cancellationWaitsForProducer = cancellationWaitsForProducer
    }

    var bufferedCount: Int { buffer.count - head }

    var isCancelled: Bool { stop == .cancelled }

    // MARK: Producer events

    enum SendAction: Equatable {
        /// Accepted; go on (after waking this consumer).
        case proceed(wake: Waiter?)
        /// Accepted, and the buffer is full: wake this consumer, then park (``parkProducer(_:)``).
        case park(wake: Waiter?)
        /// Refused: the hand-off has stopped.
        case stopped(Stop)
    }

    mutating func send(_ element: Element, weight: Int) -> SendAction {
        if let stop {
            return .stopped(stop)
        }
        precondition(end == nil, "an element was sent after the hand-off's input ended")
        buffer.append((element, weight))
        bufferedWeight += weight
        let wake = parkedConsumers.isEmpty ? nil : parkedConsumers.removeFirst()
        return bufferedWeight >= watermarks.high ? .park(wake: wake) : .proceed(wake: wake)
    }

    enum ParkAction: Equatable {
        /// Registered: wait for a wake-up, then ask again.
        case parked
        /// No need to wait: ask again now.
        case resume
        /// The hand-off has stopped.
        case stopped(Stop)
    }

    /// The producer waits for space.
    mutating func parkProducer(_ waiter: Waiter) -> ParkAction {
        if let stop {
            return .stopped(stop)
        }
        guard bufferedWeight > watermarks.low else {
            return .resume
        }
        parkedProducer = waiter
        producerWaitsForSpace = true
        return .parked
    }

    /// The producer waits for a stop only (it sleeps before a retry, say, and must be woken early).
    mutating func parkProducerUntilStopped(_ waiter: Waiter) -> ParkAction {
        if let stop {
            return .stopped(stop)
        }
        parkedProducer = waiter
        producerWaitsForSpace = false
        return .parked
    }

    /// A producer's timed wait has ended without a wake-up: forget its registration.
    mutating func unparkProducer(_ waiter: Waiter) {
        if parkedProducer == waiter {
            parkedProducer = nil
        }
    }

    /// The producer is done: the input is complete (`failure` nil) or failed. After a
    /// cancellation, this is the producer's acknowledgement. Returns the consumers to wake.
    mutating func finish(failure: (any Error)?) -> [Waiter] {
        producerFinished = true
        if stop == nil, end == nil {
            end = failure.map { .failure($0) } ?? .success(())
        }
        defer { parkedConsumers = [] }
        return parkedConsumers
    }

    // MARK: Consumer events

    enum NextAction {
        /// The next element; wake this producer (it has space again).
        case element(Element, wakeProducer: Waiter?)
        /// The input is complete and drained.
        case end
        /// The input failed; everything before the failure has been taken.
        case fail(any Error)
        /// Cancelled (and acknowledged by the producer, if the hand-off waits for that).
        case cancelled
        /// Nothing yet: park (``parkConsumer(_:)``), then ask again.
        case park
    }

    mutating func next() -> NextAction {
        switch stop {
        case .cancelled:
            return cancellationWaitsForProducer && !producerFinished ? .park : .cancelled
        case .consumerEnded:
            return .cancelled
        case nil:
            break
        }
        if head < buffer.count, let element = buffer[head].element {
            let weight = buffer[head].weight
            buffer[head].element = nil
            head += 1
            bufferedWeight -= weight
            if head == buffer.count {
                buffer.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 64, head * 2 >= buffer.count {
                buffer.removeFirst(head)
                head = 0
            }
            var wake: Waiter?
            if producerWaitsForSpace, bufferedWeight <= watermarks.low {
                wake = parkedProducer
                parkedProducer = nil
                producerWaitsForSpace = false
            }
            return .element(element, wakeProducer: wake)
        }
        switch end {
        case .success?: return .end
        case .failure(let error)?: return .fail(error)
        case nil: return .park
        }
    }

    /// A consumer waits for an element, the end, or a stop.
    mutating func parkConsumer(_ waiter: Waiter) -> ParkAction {
        switch stop {
        case .cancelled where cancellationWaitsForProducer && !producerFinished:
            break
        case let stop?:
            return .stopped(stop)
        case nil:
            guard head == buffer.count, end == nil else { return .resume }
        }
        if !parkedConsumers.contains(waiter) {
            parkedConsumers.append(waiter)
        }
        return .parked
    }

    // MARK: Stops

    /// Returned by ``cancel()``.
    struct CancelAction {
        /// Every parked party, to wake.
        var wake: [Waiter]
        /// The first cancellation: the owner stops the producer wherever else it may wait.
        var isFirst: Bool
    }

    /// Stops both sides (the consuming task was cancelled, or the producing one).
    mutating func cancel() -> CancelAction {
        guard stop != .cancelled else {
            return CancelAction(wake: [], isFirst: false)
        }
        stop = .cancelled
        dropBuffer()
        var wake = parkedConsumers
        parkedConsumers = []
        if let producer = parkedProducer {
            wake.append(producer)
            parkedProducer = nil
        }
        return CancelAction(wake: wake, isFirst: true)
    }

    /// The consumer will take nothing more; returns a parked producer to wake.
    mutating func consumerEnded() -> Waiter? {
        if stop == nil {
            stop = .consumerEnded
        }
        dropBuffer()
        defer { parkedProducer = nil }
        return parkedProducer
    }

    private mutating func dropBuffer() {
        buffer = []
        head = 0
        bufferedWeight = 0
    }
}

extension HandoffStateMachine.NextAction: Equatable where Element: Equatable {
    static func == (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case (.element(let a, let wakeA), .element(let b, let wakeB)): a == b && wakeA == wakeB
        case (.end, .end), (.cancelled, .cancelled), (.park, .park): true
        case (.fail(let a), .fail(let b)): "\(a)" == "\(b)"
        default: false
        }
    }
}

extension HandoffStateMachine.CancelAction: Equatable {}

extension HandoffStateMachine: Sendable where Element: Sendable, Waiter: Sendable {}
extension HandoffStateMachine.SendAction: Sendable where Waiter: Sendable {}
extension HandoffStateMachine.ParkAction: Sendable {}
extension HandoffStateMachine.NextAction: Sendable where Element: Sendable, Waiter: Sendable {}
extension HandoffStateMachine.CancelAction: Sendable where Waiter: Sendable {}

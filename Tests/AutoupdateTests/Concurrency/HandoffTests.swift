@testable import Autoupdate
import AutoupdateTestSupport
import Testing

/// Every transition of the hand-off, without threads: elements and waiters are plain integers.
@Suite("Hand-off state machine")
struct HandoffStateMachineTests {
    typealias Machine = HandoffStateMachine<Int, Int>

    enum Event: CustomStringConvertible, Sendable {
        case send(Int, weight: Int)
        case parkProducer(Int)
        case parkProducerUntilStopped(Int)
        case unparkProducer(Int)
        case next
        case parkConsumer(Int)
        case finish(failure: String?)
        case cancel
        case consumerEnded

        var description: String {
            switch self {
            case .send(let element, let weight): "send(\(element), \(weight))"
            case .parkProducer(let waiter): "parkProducer(\(waiter))"
            case .parkProducerUntilStopped(let waiter): "parkProducerUntilStopped(\(waiter))"
            case .unparkProducer(let waiter): "unparkProducer(\(waiter))"
            case .next: "next"
            case .parkConsumer(let waiter): "parkConsumer(\(waiter))"
            case .finish(let failure): "finish(\(failure ?? "nil"))"
            case .cancel: "cancel"
            case .consumerEnded: "consumerEnded"
            }
        }
    }

    enum Action: Equatable, Sendable {
        case send(Machine.SendAction)
        case park(Machine.ParkAction)
        case next(Machine.NextAction)
        case wake([Int])
        case cancel(Machine.CancelAction)
        case none
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func apply(_ event: Event, to machine: inout Machine) -> Action {
        switch event {
        case .send(let element, let weight): .send(machine.send(element, weight: weight))
        case .parkProducer(let waiter): .park(machine.parkProducer(waiter))
        case .parkProducerUntilStopped(let waiter): .park(machine.parkProducerUntilStopped(waiter))
        case .unparkProducer(let waiter):
            {
                machine.unparkProducer(waiter)
                return .none
            }()
        case .next: .next(machine.next())
        case .parkConsumer(let waiter): .park(machine.parkConsumer(waiter))
        case .finish(let failure): .wake(machine.finish(failure: failure.map(Failure.init)))
        case .cancel: .cancel(machine.cancel())
        case .consumerEnded: .wake(machine.consumerEnded().map { [$0] } ?? [])
        }
    }

    /// A named sequence of events, each with the action it must return.
    struct Scenario: CustomTestStringConvertible, Sendable {
        let name: String
        let watermarks: Machine.Watermarks
        let waitsForProducer: Bool
        let steps: [(Event, Action)]

        var testDescription: String { name }

        init(_ name: String, high: Int = 100, low: Int = 50, waitsForProducer: Bool = false, _ steps: [(Event, Action)]) {
            self.name = name
            watermarks = .init(high: high, low: low)
            self.waitsForProducer = waitsForProducer
            self.steps = steps
        }
    }

    static let scenarios: [Scenario] = [
        Scenario(
            "elements come out in order, then the end",
            [
                (.send(1, weight: 10), .send(.proceed(wake: nil))),
                (.send(2, weight: 10), .send(.proceed(wake: nil))),
                (.finish(failure: nil), .wake([])),
                (.next, .next(.element(1, wakeProducer: nil))),
                (.next, .next(.element(2, wakeProducer: nil))),
                (.next, .next(.end)),
                (.next, .next(.end)),
            ]),
        Scenario(
            "a parked consumer is woken by the next element, exactly once",
            [
                (.next, .next(.park)),
                (.parkConsumer(7), .park(.parked)),
                (.parkConsumer(7), .park(.parked)),
                (.send(1, weight: 1), .send(.proceed(wake: 7))),
                (.send(2, weight: 1), .send(.proceed(wake: nil))),
                (.next, .next(.element(1, wakeProducer: nil))),
            ]),
        Scenario(
            "a consumer that parks after an element arrived resumes at once",
            [
                (.next, .next(.park)),
                (.send(1, weight: 1), .send(.proceed(wake: nil))),
                (.parkConsumer(7), .park(.resume)),
                (.next, .next(.element(1, wakeProducer: nil))),
            ]),
        Scenario(
            "the producer parks at the high mark and is woken at the low mark",
            [
                (.send(1, weight: 40), .send(.proceed(wake: nil))),
                (.send(2, weight: 40), .send(.proceed(wake: nil))),
                (.send(3, weight: 40), .send(.park(wake: nil))),
                (.parkProducer(9), .park(.parked)),
                // 80 left, above the low mark of 50: no wake-up yet.
                (.next, .next(.element(1, wakeProducer: nil))),
                (.next, .next(.element(2, wakeProducer: 9))),
                (.next, .next(.element(3, wakeProducer: nil))),
                (.next, .next(.park)),
            ]),
        Scenario(
            "a producer that parks after the consumer drained resumes at once",
            [
                (.send(1, weight: 100), .send(.park(wake: nil))),
                (.next, .next(.element(1, wakeProducer: nil))),
                (.parkProducer(9), .park(.resume)),
            ]),
        Scenario(
            "one heavy element is accepted even above the high mark",
            [
                (.send(1, weight: 1000), .send(.park(wake: nil))),
                (.next, .next(.element(1, wakeProducer: nil))),
            ]),
        Scenario(
            "the consumer drains the buffer before it sees the failure, which sticks",
            [
                (.send(1, weight: 5), .send(.proceed(wake: nil))),
                (.finish(failure: "boom"), .wake([])),
                (.next, .next(.element(1, wakeProducer: nil))),
                (.next, .next(.fail(Failure(description: "boom")))),
                (.next, .next(.fail(Failure(description: "boom")))),
            ]),
        Scenario(
            "parked consumers are woken by the end",
            [
                (.next, .next(.park)),
                (.parkConsumer(1), .park(.parked)),
                (.parkConsumer(2), .park(.parked)),
                (.finish(failure: nil), .wake([1, 2])),
                (.parkConsumer(1), .park(.resume)),
                (.next, .next(.end)),
            ]),
        Scenario(
            "several consumers are woken one per element",
            [
                (.parkConsumer(1), .park(.parked)),
                (.parkConsumer(2), .park(.parked)),
                (.send(10, weight: 1), .send(.proceed(wake: 1))),
                (.send(11, weight: 1), .send(.proceed(wake: 2))),
                (.send(12, weight: 1), .send(.proceed(wake: nil))),
            ]),
        Scenario(
            "cancelling wakes everyone parked, drops the buffer and refuses more",
            [
                (.send(1, weight: 100), .send(.park(wake: nil))),
                (.parkProducer(9), .park(.parked)),
                (.cancel, .cancel(.init(wake: [9], isFirst: true))),
                (.cancel, .cancel(.init(wake: [], isFirst: false))),
                (.send(2, weight: 1), .send(.stopped(.cancelled))),
                (.parkProducer(9), .park(.stopped(.cancelled))),
                (.next, .next(.cancelled)),
                (.parkConsumer(1), .park(.stopped(.cancelled))),
            ]),
        Scenario(
            "cancelling wakes a parked consumer",
            [
                (.parkConsumer(1), .park(.parked)),
                (.cancel, .cancel(.init(wake: [1], isFirst: true))),
                (.next, .next(.cancelled)),
            ]),
        Scenario(
            "a consumer waits for the producer's acknowledgement of a cancellation", waitsForProducer: true,
            [
                (.next, .next(.park)),
                (.parkConsumer(3), .park(.parked)),
                (.cancel, .cancel(.init(wake: [3], isFirst: true))),
                // Woken, it asks again and must wait for the producer.
                (.next, .next(.park)),
                (.parkConsumer(3), .park(.parked)),
                (.send(1, weight: 1), .send(.stopped(.cancelled))),
                (.finish(failure: nil), .wake([3])),
                (.next, .next(.cancelled)),
                (.next, .next(.cancelled)),
            ]),
        Scenario(
            "a consumer arriving after the cancellation waits for the producer too", waitsForProducer: true,
            [
                (.cancel, .cancel(.init(wake: [], isFirst: true))),
                (.next, .next(.park)),
                (.parkConsumer(4), .park(.parked)),
                (.finish(failure: "late"), .wake([4])),
                (.next, .next(.cancelled)),
            ]),
        Scenario(
            "cancelling after the end drops what was left",
            [
                (.send(1, weight: 5), .send(.proceed(wake: nil))),
                (.finish(failure: nil), .wake([])),
                (.cancel, .cancel(.init(wake: [], isFirst: true))),
                (.next, .next(.cancelled)),
            ]),
        Scenario(
            "a consumer that ends wakes the parked producer, whose sends are refused",
            [
                (.send(1, weight: 100), .send(.park(wake: nil))),
                (.parkProducer(9), .park(.parked)),
                (.consumerEnded, .wake([9])),
                (.parkProducer(9), .park(.stopped(.consumerEnded))),
                (.send(2, weight: 1), .send(.stopped(.consumerEnded))),
                (.cancel, .cancel(.init(wake: [], isFirst: true))),
                (.send(3, weight: 1), .send(.stopped(.cancelled))),
            ]),
        Scenario(
            "a producer sleeping before a retry is woken only by a stop",
            [
                (.parkProducerUntilStopped(9), .park(.parked)),
                (.send(1, weight: 1), .send(.proceed(wake: nil))),
                (.next, .next(.element(1, wakeProducer: nil))),
                (.cancel, .cancel(.init(wake: [9], isFirst: true))),
                (.parkProducerUntilStopped(9), .park(.stopped(.cancelled))),
            ]),
        Scenario(
            "a timed-out sleeper is forgotten",
            [
                (.parkProducerUntilStopped(9), .park(.parked)),
                (.unparkProducer(9), .none),
                (.cancel, .cancel(.init(wake: [], isFirst: true))),
            ]),
        Scenario(
            "watermarks are kept sane", high: 0, low: 10,
            [
                (.send(1, weight: 0), .send(.proceed(wake: nil))),
                (.send(2, weight: 1), .send(.park(wake: nil))),
                (.parkProducer(9), .park(.parked)),
                (.next, .next(.element(1, wakeProducer: nil))),
                (.next, .next(.element(2, wakeProducer: 9))),
            ]),
    ]

    @Test("transitions", arguments: scenarios)
    func transitions(_ scenario: Scenario) {
        var machine = Machine(watermarks: scenario.watermarks, cancellationWaitsForProducer: scenario.waitsForProducer)
        for (index, (event, expected)) in scenario.steps.enumerated() {
            let action = Self.apply(event, to: &machine)
            #expect(action == expected, "step \(index + 1): \(event)")
        }
    }

    @Test("a long stream keeps its buffer compact")
    func compaction() {
        var machine = Machine(watermarks: .halving(1_000_000))
        for round in 0..<10_000 {
            _ = machine.send(2 * round, weight: 1)
            _ = machine.send(2 * round + 1, weight: 1)
            #expect(machine.next() == .element(round, wakeProducer: nil))
        }
        #expect(machine.bufferedCount == 10_000)
        #expect(machine.bufferedWeight == 10_000)
    }
}

/// The owner with real threads and tasks: every interleaving of producer, consumer and
/// cancellation ends, delivers in order, and loses or duplicates nothing (`make tsan` runs these
/// under ThreadSanitizer).
@Suite("Hand-off under load")
struct HandoffStressTests {
    @Test("a thread produces, a task consumes, with back-pressure")
    func threadToTask() async throws {
        let handoff = Handoff<Int>(.init(high: 8, low: 2))
        let count = 20_000
        let producer = BackgroundThread<Void>.start(name: "test.producer") {
            for value in 0..<count {
                try? handoff.sendBlocking(value, weight: 1)
            }
            handoff.finish()
        }
        var expected = 0
        while let value = try await handoff.next() {
            #expect(value == expected)
            expected += 1
        }
        #expect(expected == count)
        await producer.value
    }

    @Test("a task produces, a thread consumes, and a failure arrives after the elements")
    func taskToThread() async throws {
        let handoff = Handoff<Int>(.init(high: 4, low: 0))
        let consumer = BackgroundThread<(Int, String?)>.start(name: "test.consumer") {
            var seen = 0
            do {
                while let value = try handoff.nextBlocking() {
                    if value != seen { return (seen, "out of order: \(value)") }
                    seen += 1
                }
                return (seen, nil)
            } catch {
                return (seen, "\(error)")
            }
        }
        for value in 0..<5_000 {
            try await handoff.send(value, weight: 1)
        }
        handoff.finish(failure: HandoffStateMachineTests.Failure(description: "input failed"))
        let (seen, failure) = await consumer.value
        #expect(seen == 5_000)
        #expect(failure == "input failed")
    }

    @Test("several consumer threads share the work exactly once")
    func manyConsumers() async throws {
        let handoff = Handoff<Int>(.init(high: 16, low: 8))
        let consumers = (0..<4).map { index in
            BackgroundThread<[Int]>.start(name: "test.consumer\(index)") {
                let parker = ThreadParker()
                var taken: [Int] = []
                while let value = try? handoff.nextBlocking(parker: parker) {
                    taken.append(value)
                }
                return taken
            }
        }
        for value in 0..<10_000 {
            try await handoff.send(value, weight: 1)
        }
        handoff.finish()
        var all: [Int] = []
        for consumer in consumers {
            all += await consumer.value
        }
        #expect(all.sorted() == Array(0..<10_000))
    }

    @Test("cancellation at any moment ends both sides", arguments: 0..<40)
    func cancellationInterleavings(round: Int) async throws {
        let handoff = Handoff<Int>(.init(high: 4, low: 1), cancellationWaitsForProducer: round.isMultiple(of: 2))
        let producerEnded = OneShot<Int>()
        BackgroundThread<Void>.start(name: "test.producer") {
            var sent = 0
            while true {
                // A send that throws may have been accepted before the stop: count it.
                sent += 1
                guard (try? handoff.sendBlocking(sent - 1, weight: 1)) != nil else { break }
                if sent.isMultiple(of: 7), !handoff.sleepBlocking(for: .microseconds(50)) {
                    break
                }
            }
            handoff.finish()
            producerEnded.set(sent)
        }
        let consumer = Task {
            var taken = 0
            do {
                while try await handoff.next() != nil {
                    taken += 1
                }
            } catch {
                #expect(error is CancellationError)
            }
            return taken
        }
        // Cancel after a varying amount of work: from the task side or the hand-off's.
        for _ in 0..<(round * 3) {
            await Task.yield()
        }
        if round % 3 == 0 {
            consumer.cancel()
        } else {
            handoff.cancel()
        }
        let (taken, sent) = try await TestTiming.within(.seconds(20), "end of both sides") {
            (await consumer.value, await producerEnded.value)
        }
        #expect(taken <= sent)
    }

    @Test("a background thread's result reaches a task and a thread")
    func backgroundThread() async throws {
        let thread = BackgroundThread<Int>.start(name: "test.answer", stackSize: 64 << 10) { 42 }
        #expect(await thread.value == 42)
        #expect(thread.join() == 42)
        let value = try await runOnBackgroundThread(name: "test.run") { 7 * 6 }
        #expect(value == 42)
        await #expect(throws: HandoffStateMachineTests.Failure.self) {
            try await runOnBackgroundThread(name: "test.throw") { throw HandoffStateMachineTests.Failure(description: "x") }
        }
    }
}

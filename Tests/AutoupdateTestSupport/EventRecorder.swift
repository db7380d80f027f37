import Foundation
import NIOConcurrencyHelpers

/// Reads an event stream in the background so that a test can await "the next event like this"
/// with a bound, instead of sleeping.
public final class EventRecorder<Event: Sendable>: Sendable {
    private struct State {
        var events: [Event] = []
        var consumed = 0
        var finished = false
        var nextWaiter = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = NIOLockedValueBox(State())
    private let reader = NIOLockedValueBox<Task<Void, Never>?>(nil)

    public init(_ stream: AsyncStream<Event>) {
        let state = state
        reader.withLockedValue {
            $0 = Task {
                for await event in stream {
                    let waiters = state.withLockedValue { state in
                        state.events.append(event)
                        defer { state.waiters = [:] }
                        return state.waiters.values
                    }
                    waiters.forEach { $0.resume() }
                }
                let waiters = state.withLockedValue { state in
                    state.finished = true
                    defer { state.waiters = [:] }
                    return state.waiters.values
                }
                waiters.forEach { $0.resume() }
            }
        }
    }

    deinit {
        reader.withLockedValue { $0?.cancel() }
    }

    /// Every event so far.
    public var all: [Event] {
        state.withLockedValue { $0.events }
    }

    /// The next event after those already returned that `matches`; the ones before it are skipped.
    ///
    /// - Throws: ``TestFailure`` listing what came, when none matched within `timeout` (scaled).
    public func next(
        timeout: Duration = .seconds(30), _ description: String = "a matching event", where matches: (Event) -> Bool
    ) async throws -> Event {
        let deadline = ContinuousClock.now + TestTiming.bound(timeout)
        while true {
            let (found, finished) = state.withLockedValue { state -> (Event?, Bool) in
                while state.consumed < state.events.count {
                    let event = state.events[state.consumed]
                    state.consumed += 1
                    if matches(event) { return (event, false) }
                }
                return (nil, state.finished)
            }
            if let found { return found }
            guard !finished, ContinuousClock.now < deadline, await waitForMore(until: deadline) else {
                throw TestFailure("no \(description) within \(timeout); the events were:\n" + all.map { "  \($0)" }.joined(separator: "\n"))
            }
        }
    }

    /// Waits until an event arrives (true) or the deadline passes (false).
    private func waitForMore(until deadline: ContinuousClock.Instant) async -> Bool {
        let id = state.withLockedValue { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        let state = state
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let ready = state.withLockedValue { state in
                        if state.consumed < state.events.count || state.finished { return true }
                        state.waiters[id] = continuation
                        return false
                    }
                    if ready { continuation.resume() }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(until: deadline)
                // Release the waiter, if it is still registered.
                state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.resume()
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            await group.waitForAll()
            return first
        }
    }
}

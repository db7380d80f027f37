/// Runs `operation`, cancelling it once `limit` has passed.
///
/// - Parameter what: What is being done, for the error ("checking https://…/version.txt").
/// - Throws: ``AutoupdateError`` `.timeout` naming `what` when the limit passed first (the
///   operation was then cancelled and has ended); else what the operation throws.
func withTimeout<Value: Sendable>(
    _ limit: Duration, _ what: String, _ operation: @escaping @Sendable () async throws -> Value
) async throws -> Value {
    try await withThrowingTaskGroup(of: TimeoutOutcome<Value>.self) { group in
        group.addTask { .finished(try await operation()) }
        group.addTask {
            try await Task.sleep(for: limit)
            return .timedOut
        }
        defer { group.cancelAll() }
        switch try await group.next() {
        case .finished(let value)?:
            return value
        case .timedOut?, nil:
            throw AutoupdateError(.timeout, "\(what): no answer within \(limit.seconds) s")
        }
    }
}

/// What finished first in ``withTimeout(_:_:_:)``.
private enum TimeoutOutcome<Value: Sendable>: Sendable {
    case finished(Value)
    case timedOut
}

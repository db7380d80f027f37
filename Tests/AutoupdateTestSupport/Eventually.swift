/// Polls `condition` every 20 ms until it gives a value, for at most `limit`: only for a state no
/// event announces (files another process writes as it goes); `nil` when the time is up.
public func eventually<Value>(within limit: Duration, _ condition: () throws -> Value?) async throws -> Value? {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if let value = try condition() {
            return value
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try condition()
}

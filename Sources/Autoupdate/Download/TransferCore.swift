import Dispatch

/// What one transfer shares between its thread and the task consuming it.
///
/// Every event goes through ``TransferStateMachine`` under one lock; the resulting action
/// (resume a continuation, wake the producer, interrupt libcurl) runs after the lock is released.
final class TransferCore: Sendable {
    typealias Continuation = CheckedContinuation<DownloadChunk?, any Error>

    private let machine: Locked<TransferStateMachine<Continuation>>
    /// The producer waits on this for buffer space, and between retries. Created with 0 and only
    /// signalled to match a wait (or to interrupt one), so it never holds less than its start value.
    private let producerWakeup = DispatchSemaphore(value: 0)
    /// Interrupts the transfer thread's `curl_multi_poll`.
    let curlWakeup = CurlWakeup()
    /// The final response's status and validator, set before the producer finishes.
    private let finalHead = Locked<ResponseHead?>(nil)

    init(bufferLimit: Int) {
        machine = Locked(TransferStateMachine(bufferLimit: bufferLimit))
    }

    var isCancelled: Bool {
        machine.withLock { $0.isCancelled }
    }

    /// The final response, once the transfer has finished successfully.
    var head: ResponseHead? {
        finalHead.withLock { $0 }
    }

    // MARK: Consumer side

    /// The next chunk, `nil` at the end, or the transfer's error.
    ///
    /// Cancelling the calling task stops the transfer; the call then throws `CancellationError`
    /// only after the transfer thread has released its handles and sockets.
    func next() async throws -> DownloadChunk? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: Continuation) in
                let action = machine.withLock { $0.next(continuation) }
                switch action {
                case .resume(let chunk, let wakeProducer):
                    if wakeProducer {
                        producerWakeup.signal()
                    }
                    continuation.resume(returning: chunk)
                case .suspend:
                    break
                case .finish:
                    continuation.resume(returning: nil)
                case .fail(let error):
                    continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            cancel()
        }
    }

    /// Stops the transfer (the consumer was cancelled or went away).
    func cancel() {
        let action = machine.withLock { $0.cancel() }
        if case .stopProducer = action {
            // Signalled even when the producer is not waiting: a surplus signal is harmless
            // once it stops, and it may be about to wait before a retry.
            producerWakeup.signal()
            curlWakeup.wake()
        }
    }

    // MARK: Producer side (the transfer thread)

    /// Hands a chunk to the consumer, waiting while the buffer is full.
    ///
    /// - Returns: `false` when the consumer is gone and the transfer must stop.
    func deliver(_ chunk: DownloadChunk) -> Bool {
        let action = machine.withLock { $0.chunkProduced(chunk) }
        switch action {
        case .resumeConsumer(let consumer, let chunk):
            consumer.resume(returning: chunk)
            return true
        case .buffered:
            return true
        case .bufferedMustWait:
            producerWakeup.wait()
            return !isCancelled
        case .stop:
            return false
        }
    }

    /// Waits before a retry; returns `false` at once if the consumer cancels meanwhile.
    func waitBeforeRetry(_ delay: Duration) -> Bool {
        let clock = ContinuousClock()
        let end = clock.now + delay
        while !isCancelled {
            let left = end - clock.now
            guard left > .zero else {
                return true
            }
            let nanoseconds = left.components.seconds * 1_000_000_000 + left.components.attoseconds / 1_000_000_000
            _ = producerWakeup.wait(timeout: .now() + .nanoseconds(Int(nanoseconds)))
        }
        return false
    }

    /// The last call of the transfer thread, after every handle and socket is released.
    func finish(failure: (any Error)?, head: ResponseHead?) {
        finalHead.withLock { $0 = head }
        let action = machine.withLock { $0.producerFinished(failure: failure) }
        if case .resumeConsumer(let consumer, let result) = action {
            consumer.resume(with: result)
        }
    }
}

/// The final response of a transfer.
struct ResponseHead: Sendable {
    /// The HTTP status (200, 206, 304).
    let status: Int
    /// The representation's validator, for the next conditional request.
    let validator: HTTPValidator
}

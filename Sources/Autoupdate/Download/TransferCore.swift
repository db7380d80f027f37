/// What one transfer shares between its thread (the producer) and the task consuming it: a
/// ``Handoff`` of chunks bounded by the configuration's buffer limit.
///
/// A cancelled consumer sees `CancellationError` only after the transfer thread has released
/// its handles and sockets (the hand-off waits for the producer's acknowledgement).
final class TransferCore: Sendable {
    private let chunks: Handoff<DownloadChunk>
    /// Interrupts the transfer thread's `curl_multi_poll`.
    let curlWakeup: CurlWakeup
    /// The final response's status and validator, set before the producer finishes.
    private let finalHead = Locked<ResponseHead?>(nil)

    init(bufferLimit: Int) {
        let curlWakeup = CurlWakeup()
        self.curlWakeup = curlWakeup
        chunks = Handoff(.halving(bufferLimit), cancellationWaitsForProducer: true) {
            curlWakeup.wake()
        }
    }

    var isCancelled: Bool {
        chunks.isCancelled
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
        try await chunks.next()
    }

    /// Stops the transfer (the consumer was cancelled or went away).
    func cancel() {
        chunks.cancel()
    }

    // MARK: Producer side (the transfer thread)

    /// Hands a chunk to the consumer, waiting while the buffer is full.
    ///
    /// - Returns: `false` when the consumer is gone and the transfer must stop.
    func deliver(_ chunk: DownloadChunk) -> Bool {
        do {
            try chunks.sendBlocking(chunk, weight: chunk.bytes.count)
            return true
        } catch {
            return false
        }
    }

    /// Waits before a retry; returns `false` at once if the consumer cancels meanwhile.
    func waitBeforeRetry(_ delay: Duration) -> Bool {
        chunks.sleepBlocking(for: delay)
    }

    /// The last call of the transfer thread, after every handle and socket is released.
    func finish(failure: (any Error)?, head: ResponseHead?) {
        finalHead.withLock { $0 = head }
        chunks.finish(failure: failure)
    }
}

/// The final response of a transfer.
struct ResponseHead: Sendable {
    /// The HTTP status (200, 206, 304).
    let status: Int
    /// The representation's validator, for the next conditional request.
    let validator: HTTPValidator
}

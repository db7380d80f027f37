/// The hand-off between a transfer thread (the producer) and the task iterating a download
/// (the consumer): a bounded buffer with backpressure, end of stream, failure and cancellation.
///
/// A value type that holds data, never behaviour: its owner (``TransferCore``) calls an event
/// under its lock and acts on the returned action after leaving it. Generic over the consumer's
/// continuation so that tests can drive every transition with plain tokens.
///
/// Backpressure: once ``bufferLimit`` bytes wait for the consumer, the producer is told to wait;
/// it is woken when the consumer has drained the buffer to half of that.
struct TransferStateMachine<Consumer: Sendable>: Sendable {
    private enum State {
        /// The transfer runs; chunks wait in `buffer` or go straight to a waiting consumer.
        case streaming(buffer: [DownloadChunk], bufferedBytes: Int, consumer: Consumer?, producerWaiting: Bool)
        /// The transfer thread has ended; the consumer drains what is left, then sees the outcome.
        case producerFinished(buffer: [DownloadChunk], failure: (any Error)?)
        /// The consumer cancelled; the transfer thread is still cleaning up. A consumer that
        /// waits here is resumed with `CancellationError` once it has.
        case cancelled(consumer: Consumer?)
        /// Nothing more will happen.
        case finished(wasCancelled: Bool)
    }

    private var state: State = .streaming(buffer: [], bufferedBytes: 0, consumer: nil, producerWaiting: false)
    let bufferLimit: Int

    init(bufferLimit: Int) {
        self.bufferLimit = max(1, bufferLimit)
    }

    /// Whether the consumer has cancelled (the producer should stop).
    var isCancelled: Bool {
        switch state {
        case .cancelled: true
        case .finished(let wasCancelled): wasCancelled
        case .streaming, .producerFinished: false
        }
    }

    // MARK: Producer events

    enum ChunkAction {
        /// Hand the chunk to the waiting consumer; keep producing.
        case resumeConsumer(Consumer, DownloadChunk)
        /// Buffered; keep producing.
        case buffered
        /// Buffered, and the buffer is full: wait for the consumer's wake-up before producing more.
        case bufferedMustWait
        /// The consumer is gone: stop the transfer.
        case stop
    }

    mutating func chunkProduced(_ chunk: DownloadChunk) -> ChunkAction {
        switch state {
        case .streaming(var buffer, var bufferedBytes, let consumer, _):
            if let consumer {
                // A waiting consumer means the buffer is empty.
                state = .streaming(buffer: buffer, bufferedBytes: bufferedBytes, consumer: nil, producerWaiting: false)
                return .resumeConsumer(consumer, chunk)
            }
            buffer.append(chunk)
            bufferedBytes += chunk.bytes.count
            let mustWait = bufferedBytes >= bufferLimit
            state = .streaming(buffer: buffer, bufferedBytes: bufferedBytes, consumer: nil, producerWaiting: mustWait)
            return mustWait ? .bufferedMustWait : .buffered
        case .cancelled, .finished, .producerFinished:
            return .stop
        }
    }

    enum FinishAction {
        case none
        /// Resume the waiting consumer with the end of the stream (`nil`) or an error.
        case resumeConsumer(Consumer, Result<DownloadChunk?, any Error>)
    }

    /// The transfer thread has released everything and is about to exit.
    mutating func producerFinished(failure: (any Error)?) -> FinishAction {
        switch state {
        case .streaming(let buffer, _, let consumer, _):
            if let consumer {
                state = .finished(wasCancelled: false)
                return .resumeConsumer(consumer, failure.map { .failure($0) } ?? .success(nil))
            }
            state = .producerFinished(buffer: buffer, failure: failure)
            return .none
        case .cancelled(let consumer):
            state = .finished(wasCancelled: true)
            return consumer.map { .resumeConsumer($0, .failure(CancellationError())) } ?? .none
        case .producerFinished, .finished:
            return .none
        }
    }

    // MARK: Consumer events

    enum NextAction {
        /// Return this chunk; if `wakeProducer`, signal the waiting producer first.
        case resume(DownloadChunk, wakeProducer: Bool)
        /// The consumer was stored; an event will resume it.
        case suspend
        /// Return `nil`: the download is complete.
        case finish
        /// Throw this error.
        case fail(any Error)
    }

    mutating func next(_ consumer: Consumer) -> NextAction {
        switch state {
        case .streaming(var buffer, var bufferedBytes, let waiting, let producerWaiting):
            guard waiting == nil else {
                return .fail(AutoupdateError(.invalidArgument, "a download was iterated from two tasks at once"))
            }
            guard !buffer.isEmpty else {
                state = .streaming(buffer: buffer, bufferedBytes: bufferedBytes, consumer: consumer, producerWaiting: producerWaiting)
                return .suspend
            }
            let chunk = buffer.removeFirst()
            bufferedBytes -= chunk.bytes.count
            let wake = producerWaiting && bufferedBytes <= bufferLimit / 2
            state = .streaming(buffer: buffer, bufferedBytes: bufferedBytes, consumer: nil, producerWaiting: producerWaiting && !wake)
            return .resume(chunk, wakeProducer: wake)
        case .producerFinished(var buffer, let failure):
            guard buffer.isEmpty else {
                let chunk = buffer.removeFirst()
                state = .producerFinished(buffer: buffer, failure: failure)
                return .resume(chunk, wakeProducer: false)
            }
            state = .finished(wasCancelled: false)
            return failure.map { .fail($0) } ?? .finish
        case .cancelled(nil):
            state = .cancelled(consumer: consumer)
            return .suspend
        case .cancelled(.some):
            return .fail(AutoupdateError(.invalidArgument, "a download was iterated from two tasks at once"))
        case .finished(let wasCancelled):
            return wasCancelled ? .fail(CancellationError()) : .finish
        }
    }

    enum CancelAction {
        case none
        /// Stop the transfer: wake the producer wherever it waits (for buffer space, before a
        /// retry, in libcurl's poll).
        case stopProducer
    }

    /// The consuming task was cancelled, or the consumer stopped iterating.
    mutating func cancel() -> CancelAction {
        switch state {
        case .streaming(_, _, let consumer, _):
            state = .cancelled(consumer: consumer)
            return .stopProducer
        case .producerFinished:
            state = .finished(wasCancelled: true)
            return .none
        case .cancelled, .finished:
            return .none
        }
    }
}

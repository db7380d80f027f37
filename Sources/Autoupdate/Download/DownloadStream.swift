/// The body of a download as an asynchronous sequence of chunks, in order.
///
/// The transfer starts when iteration starts and runs on a thread of its own. At most
/// ``DownloadConfiguration/bufferLimit`` bytes wait for a slow consumer; beyond that the transfer
/// pauses, so memory does not grow with the file. Iterating twice downloads twice.
///
/// ```swift
/// for try await chunk in downloader.bytes(from: url) {
///     try file.write(contentsOf: chunk.bytes)
///     print(chunk.progress.receivedBytes, chunk.progress.totalBytes ?? -1)
/// }
/// ```
///
/// - Important: Cancelling the iterating task aborts the transfer; `next()` then throws
///   `CancellationError` once the transfer's handles and sockets are released. Breaking out of
///   the loop also aborts it.
public struct DownloadStream: AsyncSequence, Sendable {
    public typealias Element = DownloadChunk
    public typealias Failure = any Error

    private let start: @Sendable () -> TransferCore

    init(start: @escaping @Sendable () -> TransferCore) {
        self.start = start
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(start: start)
    }

    /// Iterates a ``DownloadStream``; use it from one task.
    public struct Iterator: AsyncIteratorProtocol {
        private let box: Box

        fileprivate init(start: @escaping @Sendable () -> TransferCore) {
            box = Box(start: start)
        }

        /// The next chunk, or `nil` at the end of the body.
        ///
        /// - Throws: ``AutoupdateError`` when the download fails, `CancellationError` when the
        ///   task is cancelled.
        public mutating func next() async throws -> DownloadChunk? {
            try await box.core.next()
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async throws(any Error) -> DownloadChunk? {
            try await box.core.next()
        }
    }

    /// Starts the transfer on first use and stops it when the iterator goes away.
    private final class Box {
        private let start: @Sendable () -> TransferCore
        private var started: TransferCore?

        init(start: @escaping @Sendable () -> TransferCore) {
            self.start = start
        }

        var core: TransferCore {
            if let started {
                return started
            }
            let core = start()
            started = core
            return core
        }

        deinit {
            started?.cancel()
        }
    }
}

/// Runs a decoder on a thread of its own, so that decompressing the next part of an archive
/// overlaps with what the caller does with the last (parsing entries, writing files): gzip has
/// no parallelism of its own, but an extraction is inflate plus file-system work.
///
/// Sans-I/O like every decoder: input is copied to the decoding thread, and its output comes
/// back in order on the caller's thread, during later calls. Two ``Handoff``s connect them:
/// inputs one way, output pieces the other. Memory stays bounded: at most ``maxQueuedInputs``
/// inputs wait (the decoding thread reports each input it takes, in the output's order, so
/// the caller waits only on the output side and the two can never wait for each other), and
/// the decoding thread parks while ``outputLimit`` bytes of output wait for the caller. A
/// failure is reported after the output decoded before it.
final class PipelinedDecoder: StreamDecoder {
    static let maxQueuedInputs = 2
    static let outputLimit = 1 << 20
    /// Output is handed over in pieces of about this size (or what one input yields, if less).
    static let pieceSize = 256 << 10

    private enum Output: Sendable {
        case bytes([UInt8])
        /// The decoding thread has taken an input: one more may be queued.
        case inputTaken
    }

    private let inputs = Handoff<[UInt8]>(.halving(Int.max))
    private let outputs = Handoff<Output>(.halving(outputLimit))
    private let thread: BackgroundThread<Void>
    /// Inputs sent and not yet taken by the decoding thread.
    private var queuedInputs = 0
    private var failure: (any Error)?

    /// - Parameter makeDecoder: Makes the decoder, on the decoding thread (a failure to make it
    ///   is reported as the stream's failure).
    init(_ makeDecoder: @escaping @Sendable () throws -> any StreamDecoder) {
        thread = BackgroundThread.start(name: "autoupdate.decode") { [inputs, outputs] in
            Self.decode(with: makeDecoder, inputs: inputs, outputs: outputs)
        }
    }

    deinit {
        // The caller has gone away: the decoding thread stops at its next hand-off.
        inputs.cancel()
        outputs.cancel()
        thread.join()
    }

    func decode(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        if let failure {
            throw failure
        }
        guard !input.isEmpty else { return }
        try inputs.sendBlocking([UInt8](input), weight: 1)
        queuedInputs += 1
        // What is ready goes on now; beyond the queue's bound, wait for the thread to catch up.
        while let piece = try take(wait: queuedInputs > Self.maxQueuedInputs) {
            try hand(piece, to: output)
        }
    }

    func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws {
        if let failure {
            throw failure
        }
        inputs.finish()
        while let piece = try take(wait: true) {
            try hand(piece, to: output)
        }
    }

    /// The next output (bytes, or word that an input was taken): `nil` at the end of the
    /// output, or (without `wait`) when none is ready. Sticky on failure.
    private func take(wait: Bool) throws -> Output? {
        let next: Output?
        do {
            if wait {
                next = try outputs.nextBlocking()
            } else {
                guard let ready = try outputs.poll() else { return nil }
                next = ready
            }
        } catch {
            failure = error
            throw error
        }
        if case .inputTaken = next {
            queuedInputs -= 1
        }
        return next
    }

    private func hand(_ piece: Output, to output: (UnsafeRawBufferPointer) throws -> Void) throws {
        if case .bytes(let bytes) = piece {
            try bytes.withUnsafeBytes { try output($0) }
        }
    }

    // MARK: The decoding thread

    private static func decode(with makeDecoder: () throws -> any StreamDecoder, inputs: Handoff<[UInt8]>, outputs: Handoff<Output>) {
        var pending: [UInt8] = []
        /// Hands `pending` to the caller (parking while too much output waits already).
        func publish(force: Bool) throws {
            guard !pending.isEmpty, force || pending.count >= pieceSize else { return }
            let piece = pending
            pending = []
            pending.reserveCapacity(pieceSize * 2)
            try outputs.sendBlocking(.bytes(piece), weight: piece.count)
        }
        func emit(_ piece: UnsafeRawBufferPointer) throws {
            pending.append(contentsOf: piece)
            try publish(force: false)
        }
        do {
            let decoder = try makeDecoder()
            while let bytes = try inputs.nextBlocking() {
                try outputs.sendBlocking(.inputTaken, weight: 0)
                try bytes.withUnsafeBytes { try decoder.decode($0, output: emit) }
                try publish(force: true)
            }
            try decoder.finish(output: emit)
            try publish(force: true)
            outputs.finish()
        } catch is CancellationError {
            // The caller went away.
        } catch {
            // What was decoded before the failure still goes first, as from the decoder itself.
            try? publish(force: true)
            outputs.finish(failure: error)
        }
    }
}

@available(*, unavailable)
extension PipelinedDecoder: Sendable {}

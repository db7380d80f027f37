import Dispatch
import Foundation

/// Runs a decoder on a thread of its own, so that decompressing the next part of an archive
/// overlaps with what the caller does with the last (parsing entries, writing files): gzip has
/// no parallelism of its own, but an extraction is inflate plus file-system work.
///
/// Sans-I/O like every decoder: input is copied to the decoding thread, and its output comes
/// back in order on the caller's thread, during later calls. Memory stays bounded: at most
/// ``maxQueuedInputs`` inputs wait, and the decoding thread pauses while ``outputLimit`` bytes
/// of output wait for the caller. A failure is reported after the output decoded before it.
final class PipelinedDecoder: StreamDecoder {
    static let maxQueuedInputs = 2
    static let outputLimit = 1 << 20
    /// Output is handed over in pieces of about this size (or what one input yields, if less).
    static let pieceSize = 256 << 10

    private struct Shared {
        var inputs: [[UInt8]] = []
        var inputEnded = false
        var outputs: [[UInt8]] = []
        var outputBytes = 0
        var failure: (any Error)?
        /// The decoding thread is done: the input ended or failed.
        var finished = false
        /// The caller has gone away: the decoding thread stops.
        var stopping = false
    }

    /// What one wait on the caller's side found.
    private struct Handover {
        var outputs: [[UInt8]]
        var failure: (any Error)?
        var finished: Bool
    }

    private enum Work {
        case input([UInt8])
        case end
        case stop
    }

    /// Thrown inside the decoding thread when the caller has gone away.
    private struct Stopped: Error {}

    private let shared = Guarded(Shared())
    private let exited = DispatchSemaphore(value: 0)
    private var failure: (any Error)?

    /// - Parameter makeDecoder: Makes the decoder, on the decoding thread (a failure to make it
    ///   is reported as the stream's failure).
    init(_ makeDecoder: @escaping @Sendable () throws -> any StreamDecoder) {
        let thread = Thread { [shared, exited] in
            Self.decode(with: makeDecoder, shared: shared)
            exited.signal()
        }
        thread.name = "autoupdate.decode"
        thread.start()
    }

    deinit {
        shared.withLock { $0.stopping = true }
        exited.wait()
    }

    func decode(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        if let failure {
            throw failure
        }
        guard !input.isEmpty else { return }
        let bytes = [UInt8](input)
        var queued = false
        repeat {
            let handover = shared.wait { shared -> Handover? in
                if !queued, shared.inputs.count < Self.maxQueuedInputs {
                    shared.inputs.append(bytes)
                    queued = true
                }
                // The value changes only along with a result (see `Guarded.wait`).
                return queued || !shared.outputs.isEmpty || shared.failure != nil ? Self.take(&shared) : nil
            }
            try hand(handover, to: output)
        } while !queued
    }

    func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws {
        if let failure {
            throw failure
        }
        shared.withLock { $0.inputEnded = true }
        while true {
            let handover = shared.wait { shared -> Handover? in
                !shared.outputs.isEmpty || shared.finished ? Self.take(&shared) : nil
            }
            try hand(handover, to: output)
            if handover.finished {
                return
            }
        }
    }

    private static func take(_ shared: inout Shared) -> Handover {
        let handover = Handover(outputs: shared.outputs, failure: shared.failure, finished: shared.finished)
        shared.outputs = []
        shared.outputBytes = 0
        return handover
    }

    /// Hands the output on, then throws the failure that followed it, if any.
    private func hand(_ handover: Handover, to output: (UnsafeRawBufferPointer) throws -> Void) throws {
        for piece in handover.outputs {
            try piece.withUnsafeBytes { try output($0) }
        }
        if let failure = handover.failure {
            self.failure = failure
            throw failure
        }
    }

    // MARK: The decoding thread

    private static func decode(with makeDecoder: () throws -> any StreamDecoder, shared: Guarded<Shared>) {
        var pending: [UInt8] = []
        /// Hands `pending` to the caller (waiting while too much output waits already).
        func publish(force: Bool) throws {
            guard !pending.isEmpty, force || pending.count >= pieceSize else { return }
            let piece = pending
            pending = []
            pending.reserveCapacity(pieceSize * 2)
            let accepted = shared.wait { shared -> Bool? in
                if shared.stopping { return false }
                guard shared.outputBytes < outputLimit else { return nil }
                shared.outputs.append(piece)
                shared.outputBytes += piece.count
                return true
            }
            if !accepted {
                throw Stopped()
            }
        }
        func emit(_ piece: UnsafeRawBufferPointer) throws {
            pending.append(contentsOf: piece)
            try publish(force: false)
        }
        do {
            let decoder = try makeDecoder()
            while true {
                let work = shared.wait { shared -> Work? in
                    if shared.stopping { return .stop }
                    if !shared.inputs.isEmpty { return .input(shared.inputs.removeFirst()) }
                    return shared.inputEnded ? .end : nil
                }
                switch work {
                case .stop:
                    return
                case .input(let bytes):
                    try bytes.withUnsafeBytes { try decoder.decode($0, output: emit) }
                    try publish(force: true)
                case .end:
                    try decoder.finish(output: emit)
                    try publish(force: true)
                    shared.withLock { $0.finished = true }
                    return
                }
            }
        } catch is Stopped {
            return
        } catch {
            // What was decoded before the failure still goes first, as from the decoder itself.
            try? publish(force: true)
            shared.withLock {
                $0.failure = error
                $0.finished = true
            }
        }
    }
}

@available(*, unavailable)
extension PipelinedDecoder: Sendable {}

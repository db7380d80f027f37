import CAutoupdateBzip2
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Decodes bzip2 with its blocks in parallel (bzip2 is the slowest format by far, ~25 MiB/s
/// of output per core): what ``Bzip2Decoder`` accepts, with the same checks, on every core.
///
/// The calling thread splits the input at block markers (``Bzip2MarkerScanner``) and hands the
/// blocks to a ``Bzip2BlockPool``; it then takes the results in order: checks the stream's
/// structure, chains the block CRCs into the stream's CRC and compares it with the stored one,
/// and hands the output on. A marker can be a false one (its 48 bits inside compressed data):
/// the block before it then fails to decode alone and is decoded again merged with the next
/// piece, until it ends where a piece ends. Valid streams always decode; a crafted stream with
/// more than ``maxMerges`` false markers in one block is refused as corrupt.
///
/// Memory stays bounded: at most ``window`` blocks are in flight, each worker keeps at most
/// ``outputLimit`` bytes of one block's output (a larger block is decoded again in order,
/// its output handed on piece by piece), and a piece longer than a block can be is refused.
final class ParallelBzip2Decoder: StreamDecoder {
    static let maxMerges = 16
    static let outputLimit = 4 << 20

    private enum Phase {
        /// Before the first piece (the file's `BZh` header).
        case start
        case inStream(number: Int, crc: UInt32)
        /// After the last stream's end: zero padding only.
        case trailing
        case failed(AutoupdateError)
    }

    private var scanner = Bzip2MarkerScanner()
    private let pool: Bzip2BlockPool
    private let window: Int
    /// Pieces in file order; blocks among them are being decoded by the pool.
    private var pending: [Bzip2Job] = []
    private var phase = Phase.start
    /// Decodes merged and oversized blocks on this thread.
    private let local: Bzip2BlockDecoder
    private var sawInput = false

    /// - Parameters:
    ///   - workers: Decoding threads (2 or more, else ``Bzip2Decoder`` is the better choice).
    ///   - falseMarkerStride: Tests only: also cut blocks every this many bits.
    init(workers: Int, falseMarkerStride: Int? = nil) throws {
        local = try Bzip2BlockDecoder()
        scanner.falseMarkerStride = falseMarkerStride
        pool = Bzip2BlockPool(workers: workers, outputLimit: Self.outputLimit)
        window = workers + 1
    }

    deinit {
        pool.stop()
    }

    func decode(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        if case .failed(let error) = phase {
            throw error
        }
        sawInput = sawInput || !input.isEmpty
        do {
            scanner.append(input) { segment in
                queue(segment)
            }
            // A piece stays after the one taken (a block that fails alone is merged with it);
            // ready results are taken at once, so that memory holds only what is in flight.
            while pending.count > window || (pending.count > 1 && pending[0].isReady) {
                guard try takeFirst(output: output, inputEnded: false) else { break }
            }
        } catch let error as AutoupdateError {
            throw fail(error)
        }
    }

    func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws {
        if case .failed(let error) = phase {
            throw error
        }
        do {
            guard sawInput else {
                throw AutoupdateError(.corruptArchive, "the bzip2 stream is empty")
            }
            queue(scanner.finish())
            while !pending.isEmpty {
                _ = try takeFirst(output: output, inputEnded: true)
            }
        } catch let error as AutoupdateError {
            throw fail(error)
        }
    }

    private func queue(_ segment: Bzip2Segment) {
        let job = Bzip2Job(segment)
        if segment.kind == .block {
            pool.submit(job)
        }
        pending.append(job)
    }

    private func fail(_ error: AutoupdateError) -> AutoupdateError {
        phase = .failed(error)
        return error
    }

    // MARK: In order

    /// Takes the first piece (and any it needs merged); `false` when it needs pieces that have
    /// not arrived yet (it is then put back, merged as far as it went).
    private func takeFirst(output: (UnsafeRawBufferPointer) throws -> Void, inputEnded: Bool) throws -> Bool {
        let job = pending.removeFirst()
        switch job.segment.kind {
        case .head:
            try checkHead(job.segment, isLast: pending.isEmpty)
        case .block:
            guard case .inStream(let number, let crc) = phase else {
                throw AutoupdateError.bzip2TrailingData(at: job.segment.offset)
            }
            guard let blockCRC = try decodeInOrder(job, stream: number, inputEnded: inputEnded, output: output) else {
                return false
            }
            phase = .inStream(number: number, crc: (crc << 1 | crc >> 31) ^ blockCRC)
        case .end:
            return try endStream(job.segment, inputEnded: inputEnded)
        }
        return true
    }

    private func checkHead(_ segment: Bzip2Segment, isLast: Bool) throws {
        let head = Array(segment.bytes.prefix(4))
        if isLast, head.count < 4, head == Array("BZh".utf8.prefix(head.count)) {
            throw AutoupdateError(.corruptArchive, "the bzip2 stream is truncated (in the header of stream 1)")
        }
        guard Self.isHeader(head) else {
            throw AutoupdateError.bzip2BadMagic(head)
        }
        guard !isLast else {
            throw AutoupdateError(.corruptArchive, "the bzip2 stream is truncated: stream 1 ends early, at byte \(segment.bytes.count)")
        }
        guard segment.bitCount == 32 else {
            throw AutoupdateError(.corruptArchive, "bzip2 stream 1 is corrupt near byte 4 (its first block does not follow its header)")
        }
        phase = .inStream(number: 1, crc: 0)
    }

    private static func isHeader(_ bytes: some Collection<UInt8>) -> Bool {
        let bytes = Array(bytes)
        return bytes.count == 4 && bytes[0] == 0x42 && bytes[1] == 0x5A && bytes[2] == 0x68 && (0x31...0x39).contains(bytes[3])
    }

    /// Hands a block's output on in order and returns its CRC; `nil` when it failed alone and
    /// the piece to merge it with has not arrived yet.
    private func decodeInOrder(
        _ job: Bzip2Job, stream: Int, inputEnded: Bool, output: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> UInt32? {
        var segment = job.segment
        var result = job.wait()
        var merges = job.merges
        while case .failed(let status) = result {
            if status?.rawValue == BZ_MEM_ERROR {
                throw AutoupdateError(.corruptArchive, "libbz2 could not start a decoder (BZ_MEM_ERROR)", underlying: status)
            }
            // Alone it failed: either a false marker cut it short, or it is corrupt.
            guard merges < Self.maxMerges, !segment.isOverlong else {
                throw blockError(status, segment: segment, stream: stream, truncated: false)
            }
            guard !pending.isEmpty else {
                if inputEnded {
                    throw blockError(status, segment: segment, stream: stream, truncated: status == nil)
                }
                pending.insert(Bzip2Job(segment, failed: status, merges: merges), at: 0)
                return nil
            }
            segment = segment.merged(with: pending.removeFirst().segment)
            merges += 1
            result = local.decode(segment, limit: Self.outputLimit)
        }
        switch result {
        case .decoded(let bytes):
            try bytes.withUnsafeBytes { try output($0) }
        case .oversized:
            // It decoded once already: the second time hands the output on as it comes.
            if case .failure(let failure) = try local.decode(segment, emit: output) {
                throw blockError(failure.status, segment: segment, stream: stream, truncated: false)
            }
        case .failed:
            preconditionFailure("the loop above ends only on success")
        }
        return segment.storedCRC
    }

    private func blockError(_ status: Bzip2Status?, segment: Bzip2Segment, stream: Int, truncated: Bool) -> AutoupdateError {
        if truncated {
            return AutoupdateError.bzip2Truncated(stream: stream, at: segment.offset + Int64(segment.bytes.count))
        }
        if let status, status.rawValue == BZ_DATA_ERROR {
            return AutoupdateError.bzip2Corrupt(stream: stream, near: segment.offset, status: status)
        }
        return AutoupdateError(.corruptArchive, "bzip2 stream \(stream) is corrupt near byte \(segment.offset) (a damaged block)")
    }

    /// A stream's end: its CRC, padding, then the next stream's header or zero padding.
    private func endStream(_ first: Bzip2Segment, inputEnded: Bool) throws -> Bool {
        guard case .inStream(let number, let crc) = phase else {
            throw AutoupdateError.bzip2TrailingData(at: first.offset)
        }
        var segment = first
        // A false marker may have cut the end's own 80 bits short.
        while segment.bitCount < 80, !pending.isEmpty {
            segment = segment.merged(with: pending.removeFirst().segment)
        }
        if !inputEnded, segment.bitCount < 80 || pending.isEmpty {
            // Whether another stream follows is not known yet.
            pending.insert(Bzip2Job(segment), at: 0)
            return false
        }
        guard segment.bitCount >= 80 else {
            throw AutoupdateError.bzip2Truncated(stream: number, at: segment.offset + Int64(segment.bytes.count))
        }
        guard segment.storedCRC == crc else {
            throw AutoupdateError(
                .checksumMismatch,
                "bzip2 stream \(number) is corrupt: its CRC \(hex32(segment.storedCRC)) does not match its blocks' \(hex32(crc))")
        }
        // Whole bytes after the end-of-stream bits (whose last byte is padded).
        let afterEnd = min((segment.startBit + 80 + 7) >> 3, segment.bytes.count)
        let rest = segment.bytes[afterEnd...]
        let restOffset = segment.offset + Int64(afterEnd)
        guard pending.isEmpty else {
            // Another stream follows: exactly its header, then its first piece at a byte boundary.
            guard Self.isHeader(rest), segment.endsAtByte, !segment.isOverlong else {
                throw AutoupdateError(
                    .corruptArchive,
                    rest.first == 0
                        ? "unexpected data after the bzip2 stream at byte \(restOffset)"
                        : "unexpected data after bzip2 stream \(number) at byte \(restOffset)")
            }
            phase = .inStream(number: number + 1, crc: 0)
            return true
        }
        if let first = rest.first, first != 0 {
            throw AutoupdateError(
                .corruptArchive,
                Array(rest.prefix(3)) == Array("BZh".utf8.prefix(rest.count))
                    ? "the bzip2 stream is truncated (in the header of stream \(number + 1))"
                    : "unexpected data after bzip2 stream \(number) at byte \(restOffset)")
        }
        if let garbage = rest.firstIndex(where: { $0 != 0 }) {
            throw AutoupdateError.bzip2TrailingData(at: restOffset + Int64(garbage - rest.startIndex))
        }
        guard segment.droppedOnlyZeros else {
            throw AutoupdateError(
                .corruptArchive, "unexpected data after the bzip2 stream, past byte \(segment.offset + Int64(segment.bytes.count))")
        }
        phase = .trailing
        return true
    }
}

@available(*, unavailable)
extension ParallelBzip2Decoder: Sendable {}

extension Bzip2Segment {
    /// Whether the segment ends at a byte boundary (the next starts at a whole byte).
    var endsAtByte: Bool { (startBit + bitCount) & 7 == 0 }
}

extension Bzip2Job {
    /// Whether waiting for it would not block (always, for pieces that are not blocks).
    var isReady: Bool {
        segment.kind != .block || isDone
    }
}

private func hex32(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
}

import CAutoupdateBzip2
import Dispatch
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A piece of a bzip2 file between two markers, as its raw bytes: bits
/// `startBit ..< startBit + bitCount` of `bytes`, most significant bit first.
///
/// The markers are the 48-bit block magic and end-of-stream magic, which may start at any bit.
/// A `.block` piece is one compressed block, unless a marker was a false one (the same 48 bits
/// inside compressed data), which ``ParallelBzip2Decoder`` finds out and mends by merging.
struct Bzip2Segment: Sendable {
    enum Kind: Sendable {
        /// The file's start: `BZh` and the level, before the first marker.
        case head
        /// From a block magic: the block's CRC, then its data.
        case block
        /// From an end-of-stream magic: the stream's CRC, padding, then the next stream's header
        /// or the zero padding after the last stream.
        case end
    }

    var kind: Kind
    var bytes: [UInt8] = []
    var startBit = 0
    var bitCount = 0
    /// The file offset of `bytes[0]`, for messages.
    var offset: Int64 = 0
    /// More bytes followed than are kept (see ``Bzip2MarkerScanner/maxSegmentBytes``).
    var isOverlong = false
    /// Whether every byte past the kept ones was zero (long zero padding is not kept).
    var droppedOnlyZeros = true

    /// Bytes reserved for a segment's bytes at its start: a level-9 block compresses to about
    /// this or less. One size for all keeps the decoder's memory from fragmenting (segments
    /// grown by doubling, freed in another order, left a thread's heap growing over a file).
    static let initialCapacity = 1 << 20

    /// A segment starting with `bytes` (more are appended as they arrive).
    init<Bytes: Collection<UInt8>>(kind: Kind, startingWith bytes: Bytes, startBit: Int, offset: Int64) {
        self.kind = kind
        self.bytes.reserveCapacity(max(Self.initialCapacity, bytes.count))
        self.bytes.append(contentsOf: bytes)
        self.startBit = startBit
        self.offset = offset
    }

    init(kind: Kind) {
        self.kind = kind
    }

    /// The unsigned number in `count` (at most 57) bits from bit `bit` of the segment.
    func bits(at bit: Int, count: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in 0..<count {
            let absolute = startBit + bit + index
            let byte = bytes[absolute >> 3]
            value = value << 1 | UInt64(byte >> (7 - UInt8(absolute & 7)) & 1)
        }
        return value
    }

    /// The stored CRC after a block or end-of-stream magic.
    var storedCRC: UInt32 { UInt32(bits(at: 48, count: 32)) }

    /// This segment followed by the next one (they meet at a bit).
    func merged(with next: Bzip2Segment) -> Bzip2Segment {
        var merged = self
        let sharesByte = next.startBit != 0
        merged.bytes += sharesByte ? next.bytes.dropFirst() : next.bytes[...]
        merged.bitCount += next.bitCount
        merged.isOverlong = isOverlong || next.isOverlong
        merged.droppedOnlyZeros = next.droppedOnlyZeros
        return merged
    }
}

/// Splits a bzip2 file at every block and end-of-stream magic, at any bit offset.
///
/// A 64 Ki-entry table of the two bytes each magic fixes at each of the 8 bit offsets filters
/// candidates, so about one position in 4000 gets a full 48-bit comparison.
struct Bzip2MarkerScanner {
    static let blockMagic: UInt64 = 0x3141_5926_5359
    static let endMagic: UInt64 = 0x1772_4538_5090
    /// A compressed bzip2 block never reaches this (900 000 symbols of at most 20 bits, tables
    /// and selectors: about 2.3 MB); longer pieces are cut here and refused by the verifier.
    static let maxSegmentBytes = 4 << 20

    /// For the two bytes after a candidate's first byte: bit `r` says the block magic may start
    /// at bit `r` of that first byte, bit `8 + r` the end-of-stream magic.
    private static let filter: [UInt16] = {
        var table = [UInt16](repeating: 0, count: 1 << 16)
        for (magic, flag) in [(blockMagic, UInt16(1)), (endMagic, UInt16(1) << 8)] {
            for shift in 0..<8 {
                let window = magic << (16 - shift)
                table[Int((window >> 40) & 0xFFFF)] |= flag << shift
            }
        }
        return table
    }()

    private(set) var current = Bzip2Segment(kind: .head)
    /// Tests only: also cut blocks every this many bits, as false markers would.
    var falseMarkerStride: Int?
    /// The next byte of `current` where a marker may start.
    private var nextCandidate = 0
    /// Bytes of an overlong `current` that were not kept.
    private var droppedBytes: Int64 = 0

    /// Appends input, handing over each segment that a marker ends.
    mutating func append(_ input: UnsafeRawBufferPointer, emit: (Bzip2Segment) throws -> Void) rethrows {
        var rest = input[...]
        while !rest.isEmpty {
            if !current.isOverlong, current.bytes.count >= Self.maxSegmentBytes {
                current.isOverlong = true
            }
            guard current.isOverlong else {
                let taken = min(Self.maxSegmentBytes - current.bytes.count, rest.count)
                current.bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest.prefix(taken)))
                rest = rest.dropFirst(taken)
                try scan(emit: emit)
                continue
            }
            // Of an overlong segment only whether it was zeros is kept; a marker is looked for
            // in each input piece on its own.
            let piece = Array(UnsafeRawBufferPointer(rebasing: rest))
            rest = rest[rest.endIndex...]
            let pieceOffset = current.offset + Int64(Self.maxSegmentBytes) + droppedBytes
            guard let (kind, bit) = Self.firstMarker(in: piece, from: 0) else {
                current.droppedOnlyZeros = current.droppedOnlyZeros && piece.allSatisfy { $0 == 0 }
                droppedBytes += Int64(piece.count)
                continue
            }
            current.droppedOnlyZeros = current.droppedOnlyZeros && piece[..<(bit >> 3)].allSatisfy { $0 == 0 }
            var finished = current
            finished.bitCount = finished.bytes.count * 8 - finished.startBit
            try emit(finished)
            current = Bzip2Segment(kind: kind, startingWith: piece[(bit >> 3)...], startBit: bit & 7, offset: pieceOffset + Int64(bit >> 3))
            droppedBytes = 0
            nextCandidate = 0
            try scan(emit: emit)
        }
    }

    /// The input has ended: the last segment, up to the end.
    mutating func finish() -> Bzip2Segment {
        var last = current
        last.bitCount = last.bytes.count * 8 - last.startBit
        return last
    }

    private mutating func scan(emit: (Bzip2Segment) throws -> Void) rethrows {
        // A marker may start inside the last one's 48 bits: a false marker must not hide a
        // real one just after it.
        while let (kind, bit) = nextMarker() {
            var finished = current
            current = Bzip2Segment(
                kind: kind, startingWith: finished.bytes[(bit >> 3)...], startBit: bit & 7, offset: finished.offset + Int64(bit >> 3))
            nextCandidate = 0
            // Truncated in place: `current` no longer shares its storage.
            finished.bytes.removeSubrange(((bit + 7) >> 3)...)
            finished.bitCount = bit - finished.startBit
            try emit(finished)
        }
        // Candidates need 8 bytes from their first; resume where that was not yet the case.
        nextCandidate = max(nextCandidate, current.bytes.count - 7)
    }

    private func nextMarker() -> (Bzip2Segment.Kind, Int)? {
        let marker = Self.firstMarker(in: current.bytes, from: nextCandidate, minimumBit: current.kind == .head ? 0 : current.startBit + 1)
        if let stride = falseMarkerStride, current.kind == .block {
            let cut = current.startBit + stride
            if cut + 64 <= current.bytes.count * 8, marker.map({ cut < $0.1 }) ?? true {
                return (.block, cut)
            }
        }
        return marker
    }

    /// The first marker starting at byte `from` or later (and at bit `minimumBit` or later).
    private static func firstMarker(in bytes: [UInt8], from: Int, minimumBit: Int = 0) -> (Bzip2Segment.Kind, Int)? {
        guard bytes.count >= 8 else { return nil }
        return bytes.withUnsafeBufferPointer { buffer in
            filter.withUnsafeBufferPointer { filter in
                var index = max(0, from)
                let last = buffer.count - 8
                while index <= last {
                    let flags = filter[Int(buffer[index + 1]) << 8 | Int(buffer[index + 2])]
                    if flags != 0 {
                        var window: UInt64 = 0
                        for offset in 0..<8 {
                            window = window << 8 | UInt64(buffer[index + offset])
                        }
                        for shift in 0..<8 where index * 8 + shift >= minimumBit {
                            let candidate = (window >> (16 - UInt64(shift))) & 0xFFFF_FFFF_FFFF
                            if flags & (1 << shift) != 0, candidate == blockMagic {
                                return (.block, index * 8 + shift)
                            }
                            if flags & (1 << (8 + shift)) != 0, candidate == endMagic {
                                return (.end, index * 8 + shift)
                            }
                        }
                    }
                    index += 1
                }
                return nil
            }
        }
    }
}

/// How decoding one block went.
enum Bzip2BlockResult: Sendable {
    /// Its output, whose CRC matched the block's.
    case decoded([UInt8])
    /// It decodes and its CRC matches, but its output was too large to keep: decode it again
    /// while handing the output on.
    case oversized
    /// libbz2 refused it, or it ended early or late (`nil`: not at the end of its bits).
    case failed(Bzip2Status?)
}

/// Decodes one block on its own: the block's bits are wrapped as a one-block stream (a header,
/// the block shifted to a byte boundary, an end-of-stream magic whose CRC is the block's own)
/// for libbz2, which checks the block's CRC.
final class Bzip2BlockDecoder {
    private let stream: Bzip2Stream
    private var wrapped: [UInt8] = []
    private let buffer: UnsafeMutableRawBufferPointer

    init() throws {
        stream = try Bzip2Stream()
        buffer = .allocate(byteCount: decoderBufferSize, alignment: 16)
    }

    deinit {
        buffer.deallocate()
    }

    /// Decodes a `.block` segment, keeping at most `limit` bytes of output.
    func decode(_ segment: Bzip2Segment, limit: Int) -> Bzip2BlockResult {
        var output: [UInt8] = []
        // A level-9 block is at most 900 kB before its run-length step, and usually about that
        // after it: one allocation instead of doubling through copies (pages untouched stay free).
        output.reserveCapacity(min(limit, 1 << 20))
        var oversized = false
        let outcome: Result<Void, Bzip2Failure>
        do {
            outcome = try decode(segment) { piece in
                guard !oversized else { return }
                if output.count + piece.count > limit {
                    oversized = true
                    output = []
                } else {
                    output.append(contentsOf: piece)
                }
            }
        } catch {
            // The closure above throws nothing: libbz2 could not start a decoder (memory).
            return .failed(Bzip2Status(rawValue: BZ_MEM_ERROR))
        }
        switch outcome {
        case .success: return oversized ? .oversized : .decoded(output)
        case .failure(let failure): return .failed(failure.status)
        }
    }

    /// Decodes a `.block` segment, handing its output on piece by piece.
    ///
    /// - Throws: What `emit` throws, or libbz2's failure to start a decoder (memory).
    func decode(_ segment: Bzip2Segment, emit: (UnsafeRawBufferPointer) throws -> Void) throws -> Result<Void, Bzip2Failure> {
        guard !segment.isOverlong, segment.bitCount >= 80 else { return .failure(Bzip2Failure(status: nil)) }
        wrap(segment)
        do {
            try stream.restart()
            let (consumed, ended) = try wrapped.withUnsafeBytes { try stream.decompress($0, buffer: buffer, emit: emit) }
            return ended && consumed == wrapped.count ? .success(()) : .failure(Bzip2Failure(status: nil))
        } catch let status as Bzip2Status {
            return .failure(Bzip2Failure(status: status))
        }
    }

    /// `BZh9`, the segment's bits from a byte boundary, the end-of-stream magic and the block's
    /// CRC as the stream's, zero padding. (Level 9 admits every block size.)
    private func wrap(_ segment: Bzip2Segment) {
        let dataBytes = (segment.bitCount + 7) >> 3
        let total = 4 + (segment.bitCount + 80 + 7) >> 3
        wrapped.removeAll(keepingCapacity: true)
        wrapped.append(contentsOf: repeatElement(0, count: total))
        let shift = segment.startBit
        wrapped.withUnsafeMutableBufferPointer { out in
            out[0] = 0x42
            out[1] = 0x5A
            out[2] = 0x68
            out[3] = 0x39
            segment.bytes.withUnsafeBufferPointer { source in
                if shift == 0 {
                    _ = UnsafeMutableBufferPointer(rebasing: out[4..<4 + dataBytes]).initialize(from: source[..<dataBytes])
                } else {
                    // The last source byte may be the segment's last (no byte follows it).
                    let whole = min(dataBytes, source.count - 1)
                    for index in 0..<whole {
                        out[4 + index] = source[index] << shift | source[index + 1] >> (8 - shift)
                    }
                    if whole < dataBytes {
                        out[4 + whole] = source[whole] << shift
                    }
                }
            }
            // Clear the bits past the segment in its last byte.
            let usedInLast = segment.bitCount & 7
            if usedInLast != 0 {
                out[4 + dataBytes - 1] &= 0xFF << (8 - UInt8(usedInLast))
            }
        }
        // Then the 80 bits of the end-of-stream magic and CRC right after it.
        var bit = 32 + segment.bitCount
        let trailer = [(Bzip2MarkerScanner.endMagic, 48), (UInt64(segment.storedCRC), 32)]
        for (value, count) in trailer {
            for index in stride(from: count - 1, through: 0, by: -1) {
                if value >> UInt64(index) & 1 == 1 {
                    wrapped[bit >> 3] |= 0x80 >> UInt8(bit & 7)
                }
                bit += 1
            }
        }
    }
}

@available(*, unavailable)
extension Bzip2BlockDecoder: Sendable {}

/// libbz2 refused a block (`status`), or it did not end exactly at its last bit (`nil`).
struct Bzip2Failure: Error {
    let status: Bzip2Status?
}

/// One block handed to the pool; its result is awaited in order.
final class Bzip2Job: Sendable {
    let segment: Bzip2Segment
    /// Pieces already merged into `segment`.
    let merges: Int
    private let result = OneShot<Bzip2BlockResult>()

    init(_ segment: Bzip2Segment) {
        self.segment = segment
        merges = 0
    }

    /// A block that failed alone, waiting for the next piece to be merged with.
    init(_ segment: Bzip2Segment, failed status: Bzip2Status?, merges: Int) {
        self.segment = segment
        self.merges = merges
        complete(.failed(status))
    }

    var isDone: Bool {
        result.current != nil
    }

    func complete(_ outcome: Bzip2BlockResult) {
        result.set(outcome)
    }

    /// Blocks until a worker has decoded the block.
    func wait() -> Bzip2BlockResult {
        result.wait()
    }
}

/// Threads that decode blocks, as many as the machine has cores (up to 8), taking jobs from one
/// ``Handoff``.
final class Bzip2BlockPool: Sendable {
    private let jobs = Handoff<Bzip2Job>(.halving(Int.max))
    private let threads: [BackgroundThread<Void>]
    let workers: Int

    /// - Parameter outputLimit: The most output a worker keeps for one block.
    init(workers: Int, outputLimit: Int) {
        self.workers = workers
        threads = (0..<workers).map { [jobs] index in
            BackgroundThread.start(name: "autoupdate.bzip2-\(index)") {
                let decoder = try? Bzip2BlockDecoder()
                let parker = ThreadParker()
                while let job = try? jobs.nextBlocking(parker: parker) {
                    job.complete(decoder?.decode(job.segment, limit: outputLimit) ?? .failed(Bzip2Status(rawValue: BZ_MEM_ERROR)))
                }
            }
        }
    }

    /// Queues a block (the caller bounds how many wait: its decoder keeps a window of them).
    func submit(_ job: Bzip2Job) {
        try? jobs.sendBlocking(job, weight: 1)
    }

    /// Stops the workers (queued blocks are dropped) and waits for them to exit.
    func stop() {
        jobs.cancel()
        threads.forEach { $0.join() }
    }
}

/// Reads a zip archive as a stream, from its local file headers: stored and deflated entries,
/// data descriptors (with and without their signature), zip64 sizes, UTF-8 and CP437 names.
///
/// When the stream ends, the central directory is checked against what was read (names, sizes,
/// CRCs, offsets, methods, count): any disagreement fails the archive, so a zip cannot show one
/// tree to a streaming reader and another to `unzip`. Encrypted entries and methods other than
/// stored and deflate are refused.
///
/// A stored entry with a data descriptor has no length the stream can find. From that entry on,
/// the archive is spooled to an unnamed file and read through its central directory once it is
/// complete: same events, same checks. So are archives with bytes before their first entry (a
/// self-extracting stub, padding: where the central directory's offsets start, as Go computes
/// it) or between entries. Entries may not overlap, and bytes no entry covers may not hold a zip
/// record (a reader that walks local headers would take it for an entry that the central
/// directory does not list). Bytes after the end record are ignored unless they hold a zip
/// record (readers that search backwards for the end record would find another one).
///
/// Modes and symlinks are recorded only in the central directory, so entries are first reported
/// as plain files and directories; ``centralRecords`` tells the rest once ``finish(_:)`` returns.
///
/// A reader may hand deflated entries on whole instead of inflating them (``ArchiveEvent/deflated(_:)``),
/// for its consumer to inflate them on other cores: each is checked there as it would be here.
final class ZipReader {
    private enum State {
        case signature
        case localHeader(needed: Int)
        case data
        /// Collecting a deflated entry's data, to hand it on whole.
        case collectingDeflated
        case dataDescriptor(needed: Int)
        /// The central directory and end records: collected whole, checked at the end.
        case centralDirectory(start: Int64)
        case spooling
        case finished
        case failed(AutoupdateError)
    }

    /// The entry being read.
    private struct Current {
        let header: ZipLocalHeader
        var verifier: ZipEntryVerifier
    }

    static let maxCentralDirectoryBytes = 64 << 20

    private var state = State.signature
    private var buffer: [UInt8] = []
    private var recordStart: Int64 = 0
    private var offset: Int64 = 0
    private var current: Current?
    /// What was read of each entry so far, to check against the central directory.
    private var streamed: [ZipEntryVerifier.Summary] = []
    private var deflate: RawDeflateDecoder?
    private let makeSpool: (() throws -> SpoolFile)?
    /// Deflated entries of at most this many compressed bytes, whose local header declares their
    /// sizes, are handed on whole; 0: none.
    private let handsOnDeflatedUpTo: Int64
    /// The data of the deflated entry being collected.
    private var collected: [UInt8] = []
    private var spool: SpoolFile?
    /// The archive offset of the spool's first byte.
    private var spoolBase: Int64 = 0

    /// The central directory's records, in order, once ``finish(_:)`` has returned.
    private(set) var centralRecords: [ZipCentralRecord] = []

    /// - Parameters:
    ///   - makeSpool: Makes the file to spool to if the archive cannot be streamed; without it,
    ///     such an archive is refused.
    ///   - handsOnDeflatedUpTo: Hands deflated entries of at most this many compressed bytes on
    ///     whole (``ArchiveEvent/deflated(_:)``) when their local header declares their sizes;
    ///     0 inflates every entry here.
    init(makeSpool: (() throws -> SpoolFile)?, handsOnDeflatedUpTo: Int64 = 0) {
        self.makeSpool = makeSpool
        self.handsOnDeflatedUpTo = handsOnDeflatedUpTo
    }

    /// Reads the next bytes of the archive.
    func read(_ input: UnsafeRawBufferPointer, _ handle: (ArchiveEvent) throws -> Void) throws {
        if case .failed(let error) = state {
            throw error
        }
        do {
            try consume(input[...], handle)
        } catch let error as AutoupdateError {
            state = .failed(error)
            throw error
        }
    }

    /// The stream has ended: checks the central directory (and reads spooled entries).
    func finish(_ handle: (ArchiveEvent) throws -> Void) throws {
        if case .failed(let error) = state {
            throw error
        }
        do {
            switch state {
            case .centralDirectory(let start):
                try checkStreamedDirectory(start: start)
            case .spooling:
                try readSpooled(handle)
            case .signature where offset == 0:
                throw AutoupdateError(.corruptArchive, "the zip archive is empty")
            default:
                throw AutoupdateError(
                    .corruptArchive, "the zip archive is truncated at byte \(offset)\(currentName.map { ", in entry \(quoted($0))" } ?? "")"
                )
            }
            state = .finished
        } catch let error as AutoupdateError {
            state = .failed(error)
            throw error
        }
    }

    private var currentName: String? { current?.header.name }

    // MARK: Streaming

    private func consume(_ input: Slice<UnsafeRawBufferPointer>, _ handle: (ArchiveEvent) throws -> Void) throws {
        var rest = input
        while !rest.isEmpty {
            switch state {
            case .failed(let error):
                throw error
            case .finished:
                throw AutoupdateError(.corruptArchive, "unexpected data after the zip archive")
            case .spooling:
                if let unexpected = unexpectedBytes {
                    try lookForRecord(after: unexpected, in: rest)
                }
                try spool?.append(UnsafeRawBufferPointer(rebasing: rest))
                offset += Int64(rest.count)
                return
            case .centralDirectory:
                guard buffer.count + rest.count <= Self.maxCentralDirectoryBytes else {
                    throw AutoupdateError(
                        .sizeLimitExceeded, "the zip central directory is larger than \(Self.maxCentralDirectoryBytes) bytes")
                }
                buffer += rest
                offset += Int64(rest.count)
                return
            case .signature:
                if buffer.isEmpty {
                    recordStart = offset
                }
                guard collect(&rest, upTo: 4) else { return }
                let signature = ByteReader(buffer).peekU32
                switch signature {
                case ZipSignature.localFileHeader:
                    state = .localHeader(needed: ZipLocalHeader.fixedLength)
                case ZipSignature.centralDirectory, ZipSignature.endOfCentralDirectory, ZipSignature.zip64EndOfCentralDirectory:
                    state = .centralDirectory(start: recordStart)
                default:
                    // Bytes that are no record: a stub before the first entry, or a gap between
                    // two. Only the central directory can tell the entries now.
                    guard let makeSpool else {
                        throw recordStart == 0
                            ? AutoupdateError(.corruptArchive, "not a zip archive: it starts with \(hex(buffer)), not a local file header")
                            : AutoupdateError(
                                .corruptArchive,
                                "unexpected bytes \(hex(buffer)) at byte \(recordStart) of the zip archive, where a record should start")
                    }
                    // A zip record must come soon: a stub or a gap is short, and garbage (or an
                    // endless body) must fail fast, not fill the spool.
                    unexpectedBytes = (start: recordStart, first: buffer)
                    try startSpooling(makeSpool)
                }
            case .localHeader(let needed):
                guard collect(&rest, upTo: needed) else { return }
                if needed == ZipLocalHeader.fixedLength {
                    let names = Int(buffer[26]) | Int(buffer[27]) << 8
                    let extras = Int(buffer[28]) | Int(buffer[29]) << 8
                    if names + extras > 0 {
                        state = .localHeader(needed: needed + names + extras)
                        continue
                    }
                }
                try startEntry(handle)
            case .data:
                try readData(&rest, handle)
            case .collectingDeflated:
                try collectDeflated(&rest, handle)
            case .dataDescriptor(let needed):
                guard collect(&rest, upTo: needed) else { return }
                if needed == 4, ByteReader(buffer).peekU32 == ZipSignature.dataDescriptor {
                    state = .dataDescriptor(needed: 8 + descriptorSizesLength)
                    continue
                }
                if needed == 4 {
                    state = .dataDescriptor(needed: 4 + descriptorSizesLength)
                    continue
                }
                try finishDescriptorEntry(handle)
            }
        }
    }

    /// Moves bytes from `rest` into `buffer` until it holds `count`; returns whether it does.
    private func collect(_ rest: inout Slice<UnsafeRawBufferPointer>, upTo count: Int) -> Bool {
        let taken = min(count - buffer.count, rest.count)
        if taken > 0 {
            buffer += rest.prefix(taken)
            rest = rest.dropFirst(taken)
            offset += Int64(taken)
        }
        return buffer.count == count
    }

    private var descriptorSizesLength: Int { current?.header.isZip64 == true ? 16 : 8 }

    /// Bytes that were no zip record, where a record was due: where they began and their first
    /// bytes. Cleared once a record's signature follows.
    private var unexpectedBytes: (start: Int64, first: [UInt8])?
    /// The last three bytes spooled, for a signature split between two chunks.
    private var spooledTail: [UInt8] = []

    /// How far a stub before the first entry (16 MiB) or a gap between two (1 MiB) may go.
    static let maxStub: Int64 = 16 << 20
    static let maxGap: Int64 = 1 << 20

    /// Fails unless a zip record's signature appears in `input` (spooled next) before the stub or
    /// gap that began at `unexpected.start` is longer than allowed.
    private func lookForRecord(after unexpected: (start: Int64, first: [UInt8]), in input: Slice<UnsafeRawBufferPointer>) throws {
        let window = spooledTail + input.prefix(Int(min(Int64(input.count), 1 << 24)))
        if Self.firstRecordSignature(in: window[...]) != nil {
            unexpectedBytes = nil
            return
        }
        spooledTail = Array(window.suffix(3))
        let limit = unexpected.start == 0 ? Self.maxStub : Self.maxGap
        guard offset + Int64(input.count) - unexpected.start <= limit else {
            throw unexpected.start == 0
                ? AutoupdateError(
                    .corruptArchive,
                    "not a zip archive: it starts with \(hex(unexpected.first)), and no zip record follows in its first \(limit >> 20) MiB")
                : AutoupdateError(
                    .corruptArchive,
                    "unexpected bytes \(hex(unexpected.first)) at byte \(unexpected.start) of the zip archive, where a record should start, and no record follows within \(limit >> 20) MiB"
                )
        }
    }

    /// From the record that starts at `recordStart` on, the archive goes to the spool.
    private func startSpooling(_ makeSpool: () throws -> SpoolFile) throws {
        let spool = try makeSpool()
        try buffer.withUnsafeBytes { try spool.append($0) }
        self.spool = spool
        spoolBase = recordStart
        buffer = []
        state = .spooling
    }

    private func startEntry(_ handle: (ArchiveEvent) throws -> Void) throws {
        let header = try ZipLocalHeader.parse(buffer, at: recordStart)
        try Self.checkSupported(header)
        if header.method == 0, header.hasDataDescriptor {
            // A stored entry whose length only its data descriptor knows: switch to spooling.
            guard let makeSpool else {
                throw AutoupdateError(
                    .unsupportedArchive,
                    "zip entry \(quoted(header.name)) is stored with a data descriptor and cannot be read as a stream")
            }
            try startSpooling(makeSpool)
            return
        }
        if header.method == 0, header.compressedSize != header.uncompressedSize {
            throw AutoupdateError(
                .corruptArchive,
                "stored zip entry \(quoted(header.name)) declares \(header.compressedSize) compressed but \(header.uncompressedSize) bytes")
        }
        buffer = []
        let declared =
            header.hasDataDescriptor
            ? nil
            : ZipEntryVerifier.Declared(crc: header.crc, compressedSize: header.compressedSize, uncompressedSize: header.uncompressedSize)
        current = Current(
            header: header, verifier: ZipEntryVerifier(name: header.name, offset: recordStart, method: header.method, declared: declared))
        try handle(.entry(Self.entry(header, size: header.hasDataDescriptor ? nil : header.uncompressedSize)))
        if header.method == 8, !header.hasDataDescriptor, header.compressedSize > 0, header.compressedSize <= handsOnDeflatedUpTo {
            collected = []
            collected.reserveCapacity(Int(header.compressedSize))
            state = .collectingDeflated
            return
        }
        if header.method == 8 {
            try startDeflate()
        }
        state = .data
        if current?.verifier.remaining == 0 {
            try finishEntry(handle)
        }
    }

    private func readData(_ rest: inout Slice<UnsafeRawBufferPointer>, _ handle: (ArchiveEvent) throws -> Void) throws {
        guard var entry = current else { return }
        let available = entry.verifier.remaining.map { Int(min($0, Int64(rest.count))) } ?? rest.count
        let input = UnsafeRawBufferPointer(rebasing: rest.prefix(available))
        let consumed: Int
        var ended = false
        if entry.header.method == 0 {
            try deliver(input, to: &entry, handle)
            consumed = input.count
        } else {
            (consumed, ended) = try inflate(input, into: &entry, handle)
        }
        rest = rest.dropFirst(consumed)
        offset += Int64(consumed)
        entry.verifier.consumed(consumed)
        current = entry
        if entry.header.hasDataDescriptor {
            if ended {
                state = .dataDescriptor(needed: 4)
            }
            return
        }
        if ended, entry.verifier.remaining != 0 {
            throw AutoupdateError(
                .corruptArchive,
                "the deflate data of zip entry \(quoted(entry.header.name)) ends before its compressed size of \(entry.header.compressedSize) bytes"
            )
        }
        if entry.verifier.remaining == 0 {
            if entry.header.method == 8, !ended {
                throw AutoupdateError.zipDeflateIncomplete(entry.header.name)
            }
            try finishEntry(handle)
        }
    }

    /// Takes the next bytes of a deflated entry being collected; hands it on once it is whole.
    private func collectDeflated(_ rest: inout Slice<UnsafeRawBufferPointer>, _ handle: (ArchiveEvent) throws -> Void) throws {
        guard var entry = current, let declared = entry.verifier.declared, let remaining = entry.verifier.remaining else { return }
        let taken = Int(min(remaining, Int64(rest.count)))
        collected.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest.prefix(taken)))
        rest = rest.dropFirst(taken)
        offset += Int64(taken)
        entry.verifier.consumed(taken)
        current = entry
        guard entry.verifier.remaining == 0 else { return }
        let data = ZipDeflatedEntry(
            name: entry.header.name, offset: entry.verifier.offset, compressed: collected, crc: declared.crc,
            uncompressedSize: declared.uncompressedSize)
        collected = []
        try handle(.deflated(data))
        try endEntry(entry, summary: entry.verifier.declaredSummary ?? entry.verifier.summary, handle)
    }

    private func deliver(_ bytes: UnsafeRawBufferPointer, to entry: inout Current, _ handle: (ArchiveEvent) throws -> Void) throws {
        guard !bytes.isEmpty else { return }
        try entry.verifier.produced(bytes)
        try handle(.data(bytes))
    }

    private func startDeflate() throws {
        if let deflate {
            deflate.reset()
        } else {
            deflate = try RawDeflateDecoder()
        }
    }

    private func inflate(
        _ input: UnsafeRawBufferPointer, into entry: inout Current, _ handle: (ArchiveEvent) throws -> Void
    ) throws -> (Int, Bool) {
        guard let deflate else { return (0, false) }
        do {
            return try deflate.decode(input) { try deliver($0, to: &entry, handle) }
        } catch let corrupt as RawDeflateDecoder.Corrupt {
            throw AutoupdateError(
                .corruptArchive, "the deflate data of zip entry \(quoted(entry.header.name)) is corrupt: \(corrupt.message)",
                underlying: corrupt.status)
        }
    }

    private func finishEntry(_ handle: (ArchiveEvent) throws -> Void) throws {
        guard let entry = current else { return }
        try entry.verifier.verifyData()
        try endEntry(entry, handle)
    }

    private func finishDescriptorEntry(_ handle: (ArchiveEvent) throws -> Void) throws {
        guard let entry = current else { return }
        var reader = ByteReader(buffer)
        if reader.peekU32 == ZipSignature.dataDescriptor, buffer.count == 8 + descriptorSizesLength {
            _ = try reader.u32()
        }
        let descriptor = try Self.descriptor(&reader, isZip64: entry.header.isZip64)
        buffer = []
        try entry.verifier.verify(descriptor: descriptor)
        try endEntry(entry, handle)
    }

    /// A data descriptor's CRC and sizes (after its optional signature).
    private static func descriptor(_ reader: inout ByteReader, isZip64: Bool) throws -> ZipEntryVerifier.Declared {
        let crc = try reader.u32()
        let compressed = isZip64 ? Int64(bitPattern: try reader.u64()) : Int64(try reader.u32())
        let uncompressed = isZip64 ? Int64(bitPattern: try reader.u64()) : Int64(try reader.u32())
        return ZipEntryVerifier.Declared(crc: crc, compressedSize: compressed, uncompressedSize: uncompressed)
    }

    private func endEntry(_ entry: Current, summary: ZipEntryVerifier.Summary? = nil, _ handle: (ArchiveEvent) throws -> Void) throws {
        streamed.append(summary ?? entry.verifier.summary)
        current = nil
        buffer = []
        state = .signature
        try handle(.entryEnd)
    }

    // MARK: The central directory

    private func checkStreamedDirectory(start: Int64) throws {
        var reader = ByteReader(buffer)
        var records: [ZipCentralRecord] = []
        while reader.remaining >= 4, reader.peekU32 == ZipSignature.centralDirectory {
            records.append(try ZipCentralRecord.parse(&reader))
        }
        let directorySize = Int64(reader.position)
        let end = try ZipEnd.parse(buffer, at: reader.position)
        guard end.centralDirectoryOffset == start, end.centralDirectorySize == directorySize else {
            throw AutoupdateError(
                .corruptArchive,
                "the zip end record places the central directory at byte \(end.centralDirectoryOffset) (\(end.centralDirectorySize) bytes), but it is at byte \(start) (\(directorySize) bytes)"
            )
        }
        try check(records, end: end, streamedCount: streamed.count)
        centralRecords = records
    }

    /// The central directory must list exactly the streamed entries (and the spooled ones), in order.
    private func check(_ records: [ZipCentralRecord], end: ZipEnd, streamedCount: Int) throws {
        guard end.entryCount == Int64(records.count) else {
            throw AutoupdateError(
                .corruptArchive, "the zip end record counts \(end.entryCount) entries, the central directory lists \(records.count)")
        }
        if spool == nil, records.count != streamed.count {
            throw AutoupdateError(
                .corruptArchive, "the zip central directory lists \(records.count) entries, the archive holds \(streamed.count)")
        }
        var names = Set<String>()
        for (index, record) in records.enumerated() {
            guard names.insert(record.name).inserted else {
                throw AutoupdateError(.unsafeEntry, "zip entry \(quoted(record.name)) appears twice in the central directory")
            }
            try Self.checkMode(record)
            guard index < streamedCount else { continue }
            try ZipEntryVerifier.verify(record, number: index + 1, against: streamed[index])
        }
    }

    // MARK: Spooled fallback

    private func readSpooled(_ handle: (ArchiveEvent) throws -> Void) throws {
        guard let spool else { return }
        let endBytes: (bytes: [UInt8], offset: Int64)
        do {
            endBytes = try endRecords(in: spool)
        } catch let error as AutoupdateError where spoolBase == 0 {
            // No local header at the start, and no end record: not a zip at all.
            let start = try spool.read(at: 0, count: Int(min(4, spool.size)))
            throw AutoupdateError(
                .corruptArchive, "not a zip archive: it starts with \(hex(start)), not a local file header, and has no valid end records",
                underlying: error)
        }
        let end = try ZipEnd.parse(endBytes.bytes, at: 0)
        guard end.centralDirectorySize <= Int64(Self.maxCentralDirectoryBytes), end.centralDirectorySize <= endBytes.offset else {
            throw AutoupdateError.zipDirectoryMisplaced()
        }
        // With bytes before the first entry, the offsets may count from the archive's start or
        // from the file's (a stub added after the zip was made): the directory ends where the end
        // records begin, which tells (as Go reads it). Once an entry was streamed, offsets are
        // the file's.
        let directoryStart = endBytes.offset - end.centralDirectorySize
        var base = spoolBase + directoryStart - end.centralDirectoryOffset
        if streamed.isEmpty, base > 0, end.centralDirectoryOffset >= spoolBase,
            try Self.holdsRecord(spool, at: end.centralDirectoryOffset - spoolBase, ZipSignature.centralDirectory)
        {
            base = 0
        }
        guard base >= 0, streamed.isEmpty || base == 0, end.centralDirectoryOffset + base - spoolBase == directoryStart else {
            throw AutoupdateError.zipDirectoryMisplaced()
        }
        zipBase = base
        let directory = try spool.read(at: directoryStart, count: Int(end.centralDirectorySize))
        var reader = ByteReader(directory)
        var records: [ZipCentralRecord] = []
        while reader.remaining > 0 {
            records.append(try ZipCentralRecord.parse(&reader))
        }
        try check(records, end: end, streamedCount: streamed.count)
        guard records.count >= streamed.count else {
            throw AutoupdateError(.corruptArchive, "the zip central directory lists fewer entries than the archive holds")
        }
        // Spooled entries follow each other in order, never overlapping; what lies between them
        // (or before the first, in the spool) may not hold a record.
        var position = spoolBase
        for (index, record) in records.enumerated().dropFirst(streamed.count) {
            let start = record.localHeaderOffset + zipBase
            guard start >= position else {
                throw AutoupdateError(
                    .corruptArchive,
                    "zip entry \(quoted(record.name)) starts at byte \(start), inside the previous entry (which ends at byte \(position))")
            }
            try checkUncovered(spool, from: position, to: start)
            position = try readSpooledEntry(record, number: index + 1, from: spool, handle)
        }
        let directoryFileOffset = end.centralDirectoryOffset + zipBase
        guard position <= directoryFileOffset else {
            throw AutoupdateError(.corruptArchive, "the last zip entry runs into the central directory")
        }
        try checkUncovered(spool, from: position, to: directoryFileOffset)
        centralRecords = records
    }

    /// The offset that the central directory's offsets count from: the length of a stub before
    /// the archive when they do not count it, else 0.
    private var zipBase: Int64 = 0

    /// Bytes between `start` and `end` (archive offsets, both in the spool) that no entry
    /// covers: refused if they hold a zip record, or if there are more than 1 MiB of them.
    private func checkUncovered(_ spool: SpoolFile, from start: Int64, to end: Int64) throws {
        guard end > start else { return }
        guard end - start <= 1 << 20 else {
            throw AutoupdateError(.corruptArchive, "the zip archive holds \(end - start) bytes at byte \(start) that no entry covers")
        }
        let bytes = try spool.read(at: start - spoolBase, count: Int(end - start))
        if let record = Self.firstRecordSignature(in: bytes[...]) {
            throw AutoupdateError(
                .unsafeEntry,
                "the zip archive holds a record at byte \(start + Int64(record)) that its central directory does not list (a reader that walks local headers would see another entry)"
            )
        }
    }

    private static let recordSignatures: Set<UInt32> = [
        ZipSignature.localFileHeader, ZipSignature.centralDirectory, ZipSignature.endOfCentralDirectory,
        ZipSignature.zip64EndOfCentralDirectory, ZipSignature.zip64Locator, ZipSignature.dataDescriptor,
    ]

    /// Where in `bytes` a zip record's signature starts (local or central header, data
    /// descriptor, end records), if anywhere.
    static func firstRecordSignature(in bytes: ArraySlice<UInt8>) -> Int? {
        guard bytes.count >= 4 else { return nil }
        var index = bytes.startIndex
        while index + 4 <= bytes.endIndex {
            if bytes[index] == 0x50, bytes[index + 1] == 0x4B {
                let value =
                    UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2]) << 16 | UInt32(bytes[index + 3]) << 24
                if recordSignatures.contains(value) { return index - bytes.startIndex }
            }
            index += 1
        }
        return nil
    }

    /// Whether the spool holds `signature` at `offset`.
    private static func holdsRecord(_ spool: SpoolFile, at offset: Int64, _ signature: UInt32) throws -> Bool {
        guard offset >= 0, offset + 4 <= spool.size else { return false }
        return ByteReader(try spool.read(at: offset, count: 4)).peekU32 == signature
    }

    /// Reads one entry from the spool; returns the archive offset right after it.
    private func readSpooledEntry(
        _ record: ZipCentralRecord, number: Int, from spool: SpoolFile, _ handle: (ArchiveEvent) throws -> Void
    ) throws -> Int64 {
        let start = record.localHeaderOffset + zipBase - spoolBase
        var headerBytes = try spool.read(at: start, count: ZipLocalHeader.fixedLength)
        guard ByteReader(headerBytes).peekU32 == ZipSignature.localFileHeader else {
            throw AutoupdateError(
                .corruptArchive, "zip entry \(quoted(record.name)) has no local header at byte \(record.localHeaderOffset)")
        }
        let variable = (Int(headerBytes[26]) | Int(headerBytes[27]) << 8) + (Int(headerBytes[28]) | Int(headerBytes[29]) << 8)
        headerBytes += try spool.read(at: start + Int64(ZipLocalHeader.fixedLength), count: variable)
        var header = try ZipLocalHeader.parse(headerBytes, at: record.localHeaderOffset)
        try Self.checkSupported(header)
        guard header.name == record.name else {
            throw AutoupdateError.zipNamesDisagree(entry: number, local: header.name, central: record.name)
        }
        guard header.method == record.method else {
            throw AutoupdateError(.corruptArchive, "zip entry \(quoted(record.name)) has different methods in its two headers")
        }
        header.compressedSize = record.compressedSize
        header.uncompressedSize = record.uncompressedSize
        header.crc = record.crc
        let declared = ZipEntryVerifier.Declared(
            crc: record.crc, compressedSize: record.compressedSize, uncompressedSize: record.uncompressedSize)
        var entry = Current(
            header: header,
            verifier: ZipEntryVerifier(name: record.name, offset: record.localHeaderOffset, method: record.method, declared: declared))
        try handle(.entry(Self.entry(header, size: record.uncompressedSize)))
        if header.method == 8 {
            try startDeflate()
        }
        var position = start + Int64(header.length)
        var ended = header.method == 0
        while let remaining = entry.verifier.remaining, remaining > 0 {
            let chunk = try spool.read(at: position, count: Int(min(remaining, Int64(decoderBufferSize))))
            let consumed: Int
            if header.method == 0 {
                try chunk.withUnsafeBytes { try deliver($0, to: &entry, handle) }
                consumed = chunk.count
            } else {
                guard !ended else {
                    throw AutoupdateError(
                        .corruptArchive, "the deflate data of zip entry \(quoted(record.name)) ends before its compressed size")
                }
                (consumed, ended) = try chunk.withUnsafeBytes { try inflate($0, into: &entry, handle) }
            }
            position += Int64(consumed)
            entry.verifier.consumed(consumed)
        }
        guard ended else {
            throw AutoupdateError.zipDeflateIncomplete(record.name)
        }
        try entry.verifier.verifyData()
        if header.hasDataDescriptor {
            let sizes = header.isZip64 ? 16 : 8
            let first = try spool.read(at: position, count: 4)
            let hasSignature = ByteReader(first).peekU32 == ZipSignature.dataDescriptor
            let descriptor = try spool.read(at: position + (hasSignature ? 4 : 0), count: 4 + sizes)
            var reader = ByteReader(descriptor)
            try entry.verifier.verify(descriptor: try Self.descriptor(&reader, isZip64: header.isZip64))
            position += Int64((hasSignature ? 4 : 0) + 4 + sizes)
        }
        streamed.append(entry.verifier.summary)
        try handle(.entryEnd)
        return position + spoolBase
    }

    /// Finds the end records at the end of the spool (the end-of-central-directory record, and
    /// the zip64 record and locator before it when present).
    private func endRecords(in spool: SpoolFile) throws -> (bytes: [UInt8], offset: Int64) {
        let tailLength = Int(min(spool.size, 22 + 65_535 + 20 + 56))
        let tailStart = spool.size - Int64(tailLength)
        let tail = try spool.read(at: tailStart, count: tailLength)
        var index = tail.count - 22
        while index >= 0 {
            var reader = ByteReader(tail, at: index)
            if (try? reader.u32()) == ZipSignature.endOfCentralDirectory {
                let commentLength = Int(tail[index + 20]) | Int(tail[index + 21]) << 8
                // The comment may be followed by bytes (ZipEnd.parse judges them); but the end
                // record is the last one.
                if index + 22 + commentLength <= tail.count, Self.firstRecordSignature(in: tail[(index + 22 + commentLength)...]) == nil {
                    // A zip64 end record counts when it sits right before its locator and either
                    // the end record needs it (a field at its sentinel) or agrees with it: a
                    // locator's signature alone may be an entry's bytes (Go's issue 12449).
                    if index >= 20, ByteReader(tail, at: index - 20).peekU32 == ZipSignature.zip64Locator,
                        let record = try zip64Record(
                            in: spool, locatorAt: tailStart + Int64(index - 20), endRecord: Array(tail[index..<(index + 22)]))
                    {
                        return (try spool.read(at: record, count: Int(spool.size - record)), record)
                    }
                    guard !Self.endRecordNeedsZip64(tail[index..<(index + 22)]) else {
                        throw AutoupdateError(
                            .corruptArchive, "the zip end record refers to a zip64 end record, and there is none before it")
                    }
                    return (Array(tail[index...]), tailStart + Int64(index))
                }
            }
            index -= 1
        }
        throw AutoupdateError(.corruptArchive, "the zip archive has no end-of-central-directory record")
    }

    /// The spool offset of the zip64 end record whose locator is at `locator` (a spool offset), or
    /// `nil` when there is none there, or when it disagrees with an end record that does not need
    /// it. The record is looked for right before the locator, then where the locator says.
    private func zip64Record(in spool: SpoolFile, locatorAt locator: Int64, endRecord: [UInt8]) throws -> Int64? {
        let locatorBytes = try spool.read(at: locator, count: 20)
        var reader = ByteReader(locatorBytes, at: 8)
        let said = Int64(bitPattern: try reader.u64()) - spoolBase
        for candidate in [locator - 56, said] where candidate >= 0 && candidate + 56 <= locator {
            let bytes = try spool.read(at: candidate, count: 56)
            var record = ByteReader(bytes)
            guard try record.u32() == ZipSignature.zip64EndOfCentralDirectory,
                Int64(bitPattern: try record.u64()) + 12 == locator - candidate
            else {
                continue
            }
            if Self.endRecordNeedsZip64(endRecord[...]) {
                return candidate
            }
            // Not needed: it must say what the end record says (count, size, offset).
            var fields = ByteReader(bytes, at: 32)
            let count = try fields.u64()
            let size = try fields.u64()
            let offset = try fields.u64()
            var end = ByteReader(endRecord, at: 10)
            let endCount = UInt64(try end.u16())
            let endSize = UInt64(try end.u32())
            let endOffset = UInt64(try end.u32())
            return count == endCount && size == endSize && offset == endOffset ? candidate : nil
        }
        return nil
    }

    /// Whether an end-of-central-directory record has a field at its zip64 sentinel.
    static func endRecordNeedsZip64(_ record: ArraySlice<UInt8>) -> Bool {
        let bytes = Array(record)
        func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> UInt32 { UInt32(u16(at)) | UInt32(u16(at + 2)) << 16 }
        return u16(4) == 0xFFFF || u16(6) == 0xFFFF || u16(8) == 0xFFFF || u16(10) == 0xFFFF || u32(12) == 0xFFFF_FFFF
            || u32(16) == 0xFFFF_FFFF
    }

    // MARK: Checks

    private static func checkSupported(_ header: ZipLocalHeader) throws {
        guard !header.isEncrypted else {
            throw AutoupdateError(.unsupportedArchive, "zip entry \(quoted(header.name)) is encrypted; encrypted archives are refused")
        }
        guard header.method == 0 || header.method == 8 else {
            throw AutoupdateError(
                .unsupportedArchive,
                "zip entry \(quoted(header.name)) uses compression \(zipMethodName(header.method)); only stored and deflate are supported")
        }
    }

    private static func checkMode(_ record: ZipCentralRecord) throws {
        guard let mode = record.unixMode else { return }
        switch mode & 0o170000 {
        case 0, 0o100000:
            guard !record.name.hasSuffix("/") else { return }
        case 0o040000:
            guard record.name.hasSuffix("/") else {
                throw AutoupdateError(.corruptArchive, "zip entry \(quoted(record.name)) is a directory without a trailing '/'")
            }
        case 0o120000:
            guard !record.name.hasSuffix("/") else {
                throw AutoupdateError(.corruptArchive, "zip entry \(quoted(record.name)) is a symlink with a trailing '/'")
            }
        case 0o010000:
            throw AutoupdateError(.unsafeEntry, "zip entry \(quoted(record.name)) is a FIFO; FIFOs are refused")
        case 0o020000, 0o060000:
            throw AutoupdateError(.unsafeEntry, "zip entry \(quoted(record.name)) is a device file; devices are refused")
        default:
            throw AutoupdateError(.unsafeEntry, "zip entry \(quoted(record.name)) has an unsupported file type")
        }
    }

    private static func entry(_ header: ZipLocalHeader, size: Int64?) -> ArchiveEntry {
        ArchiveEntry(
            path: header.name, kind: header.name.hasSuffix("/") ? .directory : .file, mode: nil,
            size: size, modificationTime: header.modificationTime)
    }
}

@available(*, unavailable)
extension ZipReader: Sendable {}

extension ByteReader {
    /// The next four bytes as a little-endian value, without moving (0 when fewer remain).
    var peekU32: UInt32 {
        var copy = self
        return (try? copy.u32()) ?? 0
    }
}

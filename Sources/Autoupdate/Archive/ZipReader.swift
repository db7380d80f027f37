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
/// complete: same events, same checks, and entries must follow each other without gaps or overlap.
///
/// Modes and symlinks are recorded only in the central directory, so entries are first reported
/// as plain files and directories; ``centralRecords`` tells the rest once ``finish(_:)`` returns.
final class ZipReader {
    private enum State {
        case signature
        case localHeader(needed: Int)
        case data
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
        let offset: Int64
        /// Compressed bytes left, or `nil` when a data descriptor will tell.
        var remaining: Int64?
        var crc = CRC32()
        var produced: Int64 = 0
        var consumed: Int64 = 0
    }

    /// What was streamed, to check against the central directory.
    private struct Streamed {
        let name: String
        let offset: Int64
        let method: UInt16
        let crc: UInt32
        let compressedSize: Int64
        let uncompressedSize: Int64
    }

    static let maxCentralDirectoryBytes = 64 << 20

    private var state = State.signature
    private var buffer: [UInt8] = []
    private var recordStart: Int64 = 0
    private var offset: Int64 = 0
    private var current: Current?
    private var streamed: [Streamed] = []
    private var inflater: InflateStream?
    private let inflateBuffer: UnsafeMutableRawBufferPointer
    private let makeSpool: (() throws -> SpoolFile)?
    private var spool: SpoolFile?
    private var spoolBase: Int64 = 0

    /// The central directory's records, in order, once ``finish(_:)`` has returned.
    private(set) var centralRecords: [ZipCentralRecord] = []

    /// - Parameter makeSpool: Makes the file to spool to if the archive cannot be streamed;
    ///   without it, such an archive is refused.
    init(makeSpool: (() throws -> SpoolFile)?) {
        self.makeSpool = makeSpool
        inflateBuffer = .allocate(byteCount: decoderBufferSize, alignment: 16)
    }

    deinit {
        inflateBuffer.deallocate()
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
                throw AutoupdateError(.corruptArchive, "the zip archive is truncated at byte \(offset)\(currentName.map { ", in entry \(quoted($0))" } ?? "")")
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
                try spool?.append(UnsafeRawBufferPointer(rebasing: rest))
                offset += Int64(rest.count)
                return
            case .centralDirectory:
                guard buffer.count + rest.count <= Self.maxCentralDirectoryBytes else {
                    throw AutoupdateError(.sizeLimitExceeded, "the zip central directory is larger than \(Self.maxCentralDirectoryBytes) bytes")
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
                    let error = recordStart == 0
                        ? AutoupdateError(.corruptArchive, "not a zip archive: it starts with \(hex(buffer)), not a local file header")
                        : AutoupdateError(.corruptArchive, "unexpected bytes \(hex(buffer)) at byte \(recordStart) of the zip archive, where a record should start")
                    throw error
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
            let spool = try makeSpool()
            try buffer.withUnsafeBytes { try spool.append($0) }
            self.spool = spool
            spoolBase = recordStart
            buffer = []
            state = .spooling
            return
        }
        if header.method == 0, header.compressedSize != header.uncompressedSize {
            throw AutoupdateError(
                .corruptArchive, "stored zip entry \(quoted(header.name)) declares \(header.compressedSize) compressed but \(header.uncompressedSize) bytes")
        }
        buffer = []
        current = Current(header: header, offset: recordStart, remaining: header.hasDataDescriptor ? nil : header.compressedSize)
        try handle(.entry(Self.entry(header, size: header.hasDataDescriptor ? nil : header.uncompressedSize)))
        if header.method == 8 {
            if let inflater {
                inflater.reset()
            } else {
                inflater = try InflateStream(windowBits: -15)
            }
        }
        state = .data
        if current?.remaining == 0 {
            try finishEntry(handle)
        }
    }

    private func readData(_ rest: inout Slice<UnsafeRawBufferPointer>, _ handle: (ArchiveEvent) throws -> Void) throws {
        guard var entry = current else { return }
        let available = entry.remaining.map { Int(min($0, Int64(rest.count))) } ?? rest.count
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
        entry.consumed += Int64(consumed)
        entry.remaining = entry.remaining.map { $0 - Int64(consumed) }
        current = entry
        if entry.header.hasDataDescriptor {
            if ended {
                state = .dataDescriptor(needed: 4)
            }
            return
        }
        if ended, entry.remaining != 0 {
            throw AutoupdateError(
                .corruptArchive, "the deflate data of zip entry \(quoted(entry.header.name)) ends before its compressed size of \(entry.header.compressedSize) bytes")
        }
        if entry.remaining == 0 {
            if entry.header.method == 8, !ended {
                throw AutoupdateError(
                    .corruptArchive, "the deflate data of zip entry \(quoted(entry.header.name)) is incomplete")
            }
            try finishEntry(handle)
        }
    }

    private func deliver(_ bytes: UnsafeRawBufferPointer, to entry: inout Current, _ handle: (ArchiveEvent) throws -> Void) throws {
        guard !bytes.isEmpty else { return }
        entry.produced += Int64(bytes.count)
        if !entry.header.hasDataDescriptor, entry.produced > entry.header.uncompressedSize {
            throw AutoupdateError(
                .sizeLimitExceeded, "zip entry \(quoted(entry.header.name)) inflates past its declared size of \(entry.header.uncompressedSize) bytes")
        }
        entry.crc.update(bytes)
        try handle(.data(bytes))
    }

    private func inflate(_ input: UnsafeRawBufferPointer, into entry: inout Current, _ handle: (ArchiveEvent) throws -> Void) throws -> (Int, Bool) {
        guard let inflater else { return (0, false) }
        do {
            return try inflater.inflate(input, buffer: inflateBuffer) { try deliver($0, to: &entry, handle) }
        } catch let failure as InflateFailure {
            throw AutoupdateError(
                .corruptArchive, "the deflate data of zip entry \(quoted(entry.header.name)) is corrupt: \(failure.message)",
                underlying: failure.status)
        }
    }

    private func finishEntry(_ handle: (ArchiveEvent) throws -> Void) throws {
        guard let entry = current else { return }
        let header = entry.header
        guard entry.crc.value == header.crc else {
            throw AutoupdateError(.checksumMismatch, "zip entry \(quoted(header.name)) is corrupt: CRC-32 mismatch")
        }
        guard entry.produced == header.uncompressedSize else {
            throw AutoupdateError(
                .corruptArchive, "zip entry \(quoted(header.name)) has \(entry.produced) bytes, not its declared \(header.uncompressedSize)")
        }
        try endEntry(entry, crc: header.crc, handle)
    }

    private func finishDescriptorEntry(_ handle: (ArchiveEvent) throws -> Void) throws {
        guard let entry = current else { return }
        var reader = ByteReader(buffer)
        if reader.peekU32 == ZipSignature.dataDescriptor, buffer.count == 8 + descriptorSizesLength {
            _ = try reader.u32()
        }
        let crc = try reader.u32()
        let compressed = entry.header.isZip64 ? Int64(bitPattern: try reader.u64()) : Int64(try reader.u32())
        let uncompressed = entry.header.isZip64 ? Int64(bitPattern: try reader.u64()) : Int64(try reader.u32())
        buffer = []
        guard crc == entry.crc.value else {
            throw AutoupdateError(.checksumMismatch, "zip entry \(quoted(entry.header.name)) is corrupt: CRC-32 mismatch (data descriptor)")
        }
        guard compressed == entry.consumed, uncompressed == entry.produced else {
            throw AutoupdateError(
                .corruptArchive, "the data descriptor of zip entry \(quoted(entry.header.name)) disagrees with its data (sizes \(compressed)/\(uncompressed), read \(entry.consumed)/\(entry.produced))")
        }
        try endEntry(entry, crc: crc, handle)
    }

    private func endEntry(_ entry: Current, crc: UInt32, _ handle: (ArchiveEvent) throws -> Void) throws {
        streamed.append(Streamed(
            name: entry.header.name, offset: entry.offset, method: entry.header.method, crc: crc,
            compressedSize: entry.consumed, uncompressedSize: entry.produced))
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
                .corruptArchive, "the zip end record places the central directory at byte \(end.centralDirectoryOffset) (\(end.centralDirectorySize) bytes), but it is at byte \(start) (\(directorySize) bytes)")
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
            let entry = streamed[index]
            guard record.name == entry.name else {
                throw AutoupdateError(
                    .unsafeEntry, "zip entry \(index + 1) is named \(quoted(entry.name)) in its local header but \(quoted(record.name)) in the central directory")
            }
            guard record.localHeaderOffset == entry.offset, record.method == entry.method, record.crc == entry.crc,
                  record.compressedSize == entry.compressedSize, record.uncompressedSize == entry.uncompressedSize
            else {
                throw AutoupdateError(
                    .corruptArchive, "the zip central directory disagrees with local entry \(quoted(entry.name)) (offset, method, CRC or sizes)")
            }
        }
    }

    // MARK: Spooled fallback

    private func readSpooled(_ handle: (ArchiveEvent) throws -> Void) throws {
        guard let spool else { return }
        let endBytes = try Self.endRecords(in: spool)
        let end = try ZipEnd.parse(endBytes.bytes, at: 0)
        let directoryStart = end.centralDirectoryOffset - spoolBase
        guard directoryStart >= 0, end.centralDirectorySize <= Int64(Self.maxCentralDirectoryBytes),
              directoryStart + end.centralDirectorySize == endBytes.offset
        else {
            throw AutoupdateError(.corruptArchive, "the zip end record places the central directory where it is not")
        }
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
        // Spooled entries must follow each other exactly: no gap, no overlap, no reuse of bytes.
        var position = spoolBase
        for (index, record) in records.enumerated().dropFirst(streamed.count) {
            guard record.localHeaderOffset == position else {
                throw AutoupdateError(
                    .corruptArchive, "zip entry \(quoted(record.name)) starts at byte \(record.localHeaderOffset), not right after the previous entry (byte \(position))")
            }
            position = try readSpooledEntry(record, number: index + 1, from: spool, handle)
        }
        guard position == end.centralDirectoryOffset else {
            throw AutoupdateError(.corruptArchive, "unexpected data between the last zip entry and the central directory")
        }
        centralRecords = records
    }

    /// Reads one entry from the spool; returns the archive offset right after it.
    private func readSpooledEntry(_ record: ZipCentralRecord, number: Int, from spool: SpoolFile, _ handle: (ArchiveEvent) throws -> Void) throws -> Int64 {
        let start = record.localHeaderOffset - spoolBase
        var headerBytes = try spool.read(at: start, count: ZipLocalHeader.fixedLength)
        guard ByteReader(headerBytes).peekU32 == ZipSignature.localFileHeader else {
            throw AutoupdateError(.corruptArchive, "zip entry \(quoted(record.name)) has no local header at byte \(record.localHeaderOffset)")
        }
        let variable = (Int(headerBytes[26]) | Int(headerBytes[27]) << 8) + (Int(headerBytes[28]) | Int(headerBytes[29]) << 8)
        headerBytes += try spool.read(at: start + Int64(ZipLocalHeader.fixedLength), count: variable)
        var header = try ZipLocalHeader.parse(headerBytes, at: record.localHeaderOffset)
        try Self.checkSupported(header)
        guard header.name == record.name else {
            throw AutoupdateError(
                .unsafeEntry, "zip entry \(number) is named \(quoted(header.name)) in its local header but \(quoted(record.name)) in the central directory")
        }
        guard header.method == record.method else {
            throw AutoupdateError(.corruptArchive, "zip entry \(quoted(record.name)) has different methods in its two headers")
        }
        header.compressedSize = record.compressedSize
        header.uncompressedSize = record.uncompressedSize
        header.crc = record.crc
        var entry = Current(header: header, offset: record.localHeaderOffset, remaining: record.compressedSize)
        try handle(.entry(Self.entry(header, size: record.uncompressedSize)))
        if header.method == 8 {
            if let inflater { inflater.reset() } else { inflater = try InflateStream(windowBits: -15) }
        }
        var position = start + Int64(header.length)
        var ended = header.method == 0
        while let remaining = entry.remaining, remaining > 0 {
            let chunk = try spool.read(at: position, count: Int(min(remaining, Int64(decoderBufferSize))))
            let consumed: Int
            if header.method == 0 {
                try chunk.withUnsafeBytes { try deliver($0, to: &entry, handle) }
                consumed = chunk.count
            } else {
                guard !ended else {
                    throw AutoupdateError(.corruptArchive, "the deflate data of zip entry \(quoted(record.name)) ends before its compressed size")
                }
                (consumed, ended) = try chunk.withUnsafeBytes { try inflate($0, into: &entry, handle) }
            }
            position += Int64(consumed)
            entry.consumed += Int64(consumed)
            entry.remaining = remaining - Int64(consumed)
        }
        guard ended else {
            throw AutoupdateError(.corruptArchive, "the deflate data of zip entry \(quoted(record.name)) is incomplete")
        }
        guard entry.crc.value == record.crc else {
            throw AutoupdateError(.checksumMismatch, "zip entry \(quoted(record.name)) is corrupt: CRC-32 mismatch")
        }
        guard entry.produced == record.uncompressedSize else {
            throw AutoupdateError(.corruptArchive, "zip entry \(quoted(record.name)) has \(entry.produced) bytes, not its declared \(record.uncompressedSize)")
        }
        if header.hasDataDescriptor {
            let sizes = header.isZip64 ? 16 : 8
            let first = try spool.read(at: position, count: 4)
            let hasSignature = ByteReader(first).peekU32 == ZipSignature.dataDescriptor
            let descriptor = try spool.read(at: position + (hasSignature ? 4 : 0), count: 4 + sizes)
            var reader = ByteReader(descriptor)
            let crc = try reader.u32()
            let compressed = header.isZip64 ? Int64(bitPattern: try reader.u64()) : Int64(try reader.u32())
            let uncompressed = header.isZip64 ? Int64(bitPattern: try reader.u64()) : Int64(try reader.u32())
            guard crc == record.crc, compressed == record.compressedSize, uncompressed == record.uncompressedSize else {
                throw AutoupdateError(.corruptArchive, "the data descriptor of zip entry \(quoted(record.name)) disagrees with the central directory")
            }
            position += Int64((hasSignature ? 4 : 0) + 4 + sizes)
        }
        streamed.append(Streamed(
            name: record.name, offset: record.localHeaderOffset, method: record.method, crc: record.crc,
            compressedSize: record.compressedSize, uncompressedSize: record.uncompressedSize))
        try handle(.entryEnd)
        return position + spoolBase
    }

    /// Finds the end records at the end of the spool (the end-of-central-directory record, and
    /// the zip64 record and locator before it when present).
    private static func endRecords(in spool: SpoolFile) throws -> (bytes: [UInt8], offset: Int64) {
        let tailLength = Int(min(spool.size, 22 + 65_535 + 20 + 56))
        let tailStart = spool.size - Int64(tailLength)
        let tail = try spool.read(at: tailStart, count: tailLength)
        var index = tail.count - 22
        while index >= 0 {
            var reader = ByteReader(tail, at: index)
            if (try? reader.u32()) == ZipSignature.endOfCentralDirectory {
                let commentLength = Int(tail[index + 20]) | Int(tail[index + 21]) << 8
                if index + 22 + commentLength == tail.count {
                    var start = index
                    if index >= 20, ByteReader(tail, at: index - 20).peekU32 == ZipSignature.zip64Locator {
                        var locator = ByteReader(tail, at: index - 20 + 8)
                        let recordOffset = Int64(bitPattern: try locator.u64())
                        guard recordOffset >= 0 else { break }
                        let relative = Int(recordOffset - tailStart)
                        guard relative >= 0, relative < index - 20 else {
                            // The zip64 record is further back than the tail: read from there.
                            let bytes = try spool.read(at: recordOffset, count: Int(spool.size - recordOffset))
                            return (bytes, recordOffset)
                        }
                        start = relative
                    }
                    return (Array(tail[start...]), tailStart + Int64(start))
                }
            }
            index -= 1
        }
        throw AutoupdateError(.corruptArchive, "the zip archive has no end-of-central-directory record")
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

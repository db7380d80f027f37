/// Reads a tar stream: ustar, old GNU (long names and long link names: `L`, `K`; sparse files:
/// `S`), pax (extended headers `x`, and Sun's older `X`; global headers `g`; GNU sparse files
/// 0.0, 0.1 and 1.0) and GNU dumpdirs (`D`, read as folders).
///
/// Sans-I/O: feed it chunks of any size (one byte included) and it calls back with
/// ``ArchiveEvent``s; entry data is handed over without copying. Regular files (sparse ones with
/// their holes as ``ArchiveEvent/hole(_:)``), folders, symlinks and hard links are read; volume
/// labels (`V`) and Solaris ACLs (`A`) are metadata and skipped; every other type (devices,
/// FIFOs, multi-volume parts, …) is refused, naming the entry. Header checksums are verified.
/// Once it fails, it keeps failing.
///
/// Framing, where readers differ:
/// - Links, symlinks and folders (types 1–6) carry no data whatever their size field says
///   (POSIX; Go does the same), except a hard link whose pax header gives a `size`: its data
///   follows and is skipped (libarchive's reading of pax hard links).
/// - A second pax header before an entry replaces the first (as GNU tar, bsdtar and Go read it).
/// - A pax global header that sets `path`, `linkpath` or `size` is refused: readers disagree
///   on whether it applies to every later entry, and so would name or frame them differently.
/// - The first zero block ends the archive. Anything after it is ignored unless it holds a
///   valid tar header (a second archive, or entries after a lone zero block): some readers go
///   on reading those and some do not, so it is refused. An archive that ends without any zero
///   block is refused: it cannot be told from one truncated at an entry's end.
struct TarReader {
    private enum State {
        case header
        /// A pax header or a GNU long name or link name: its data is collected, then applied.
        case extended(ExtendedKind, remaining: Int64, padding: Int64)
        case data(remaining: Int64, padding: Int64)
        /// A sparse file's map at the start of its data (GNU sparse 1.0): collected, then read.
        case sparseMap(SparsePending, remaining: Int64, padding: Int64)
        /// A sparse file's stored data, laid out along its map.
        case sparseData(SparseCursor, padding: Int64)
        /// An old GNU sparse header's extension blocks.
        case sparseExtension(OldGNUSparse)
        case skip(remaining: Int64)
        /// After the first zero block: the end. Only blocks that are not headers may follow.
        case ended
        case failed(AutoupdateError)
    }

    enum ExtendedKind {
        case pax, globalPax, longName, longLink

        var limit: Int64 {
            switch self {
            case .pax, .globalPax: 1 << 20
            case .longName, .longLink: 64 << 10
            }
        }

        var label: String {
            switch self {
            case .pax: "pax extended header"
            case .globalPax: "pax global header"
            case .longName: "GNU long name"
            case .longLink: "GNU long link name"
            }
        }
    }

    static let blockSize = 512

    private var state = State.header
    private var block: [UInt8] = []
    private var extended: [UInt8] = []
    private var longName: String?
    private var longLink: String?
    /// The pax header before the next entry (the last one, when there are several).
    private var localPax = PaxRecords()
    /// Global pax records in force (only those that neither name nor frame entries).
    private var globalPax = PaxRecords()
    /// Bytes of the tar stream consumed, for messages.
    private(set) var offset: Int64 = 0
    /// Entries read so far (extended headers not counted).
    private(set) var entryCount = 0

    init() {}

    /// Reads the next bytes of the archive.
    ///
    /// - Throws: ``AutoupdateError`` (`.corruptArchive`, `.unsupportedArchive`, `.unsafeEntry`),
    ///   or whatever `handle` throws; the reader fails for good either way.
    mutating func read(_ input: UnsafeRawBufferPointer, _ handle: (ArchiveEvent) throws -> Void) throws {
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

    /// The stream has ended: it must have ended after the end-of-archive marker.
    mutating func finish() throws {
        switch state {
        case .failed(let error):
            throw error
        case .ended:
            return
        case .header where block.isEmpty && entryCount == 0 && offset == 0:
            throw fail("the tar archive is empty")
        case .data, .extended, .skip, .sparseMap, .sparseData, .sparseExtension:
            throw fail("the tar archive is truncated inside an entry's data, at byte \(offset)")
        case .header:
            throw fail(
                block.isEmpty
                    ? "the tar archive is truncated: no end-of-archive marker after byte \(offset)"
                    : "the tar archive is truncated inside a header, at byte \(offset)")
        }
    }

    mutating func fail(_ message: String, code: AutoupdateError.Code = .corruptArchive) -> AutoupdateError {
        let error = AutoupdateError(code, message)
        state = .failed(error)
        return error
    }

    private mutating func consume(_ input: Slice<UnsafeRawBufferPointer>, _ handle: (ArchiveEvent) throws -> Void) throws {
        var rest = input
        while !rest.isEmpty {
            switch state {
            case .failed(let error):
                throw error
            case .header, .ended, .sparseExtension:
                if block.isEmpty, rest.count >= Self.blockSize {
                    let header = UnsafeRawBufferPointer(rebasing: rest.prefix(Self.blockSize))
                    rest = rest.dropFirst(Self.blockSize)
                    offset += Int64(Self.blockSize)
                    try processBlock(header, handle)
                } else {
                    let taken = min(Self.blockSize - block.count, rest.count)
                    block += rest.prefix(taken)
                    rest = rest.dropFirst(taken)
                    offset += Int64(taken)
                    guard block.count == Self.blockSize else { return }
                    let header = block
                    block.removeAll(keepingCapacity: true)
                    try header.withUnsafeBytes { try processBlock($0, handle) }
                }
            case .data(let remaining, let padding):
                let taken = Int(min(remaining, Int64(rest.count)))
                if taken > 0 {
                    try handle(.data(UnsafeRawBufferPointer(rebasing: rest.prefix(taken))))
                }
                rest = rest.dropFirst(taken)
                offset += Int64(taken)
                if remaining == Int64(taken) {
                    try handle(.entryEnd)
                    state = padding > 0 ? .skip(remaining: padding) : .header
                } else {
                    state = .data(remaining: remaining - Int64(taken), padding: padding)
                }
            case .sparseMap(var pending, let remaining, let padding):
                // The state lets go of the map, so that it grows in place rather than copied.
                state = .header
                // A block at a time: the map ends at a block's end, where the stored data begins.
                let taken = Int(min(remaining, Int64(rest.count), Int64(pending.roomInBlock)))
                let piece = rest.prefix(taken)
                rest = rest.dropFirst(taken)
                offset += Int64(taken)
                if let cursor = try pending.take(
                    UnsafeRawBufferPointer(rebasing: piece), storedAfter: remaining - Int64(taken), reader: &self)
                {
                    try start(cursor, storedRemaining: remaining - Int64(taken), padding: padding, handle)
                } else if remaining == Int64(taken) {
                    throw fail("the sparse map of entry \(quoted(pending.path)) does not end within its data")
                } else {
                    state = .sparseMap(pending, remaining: remaining - Int64(taken), padding: padding)
                }
            case .sparseData(var cursor, let padding):
                let taken = try cursor.feed(UnsafeRawBufferPointer(rebasing: rest), handle)
                rest = rest.dropFirst(taken)
                offset += Int64(taken)
                if cursor.isComplete {
                    try cursor.finish(handle)
                    try handle(.entryEnd)
                    state = padding > 0 ? .skip(remaining: padding) : .header
                } else {
                    state = .sparseData(cursor, padding: padding)
                }
            case .skip(let remaining):
                let taken = Int(min(remaining, Int64(rest.count)))
                rest = rest.dropFirst(taken)
                offset += Int64(taken)
                state = remaining == Int64(taken) ? .header : .skip(remaining: remaining - Int64(taken))
            case .extended(let kind, let remaining, let padding):
                let taken = Int(min(remaining, Int64(rest.count)))
                extended += rest.prefix(taken)
                rest = rest.dropFirst(taken)
                offset += Int64(taken)
                if remaining == Int64(taken) {
                    try applyExtended(kind)
                    state = padding > 0 ? .skip(remaining: padding) : .header
                } else {
                    state = .extended(kind, remaining: remaining - Int64(taken), padding: padding)
                }
            }
        }
    }

    // MARK: Headers

    private mutating func processBlock(_ header: UnsafeRawBufferPointer, _ handle: (ArchiveEvent) throws -> Void) throws {
        if case .sparseExtension(var sparse) = state {
            // The state lets go of the map, so that it grows in place rather than copied.
            state = .header
            try sparse.readExtension(header, reader: &self)
            if sparse.hasMoreExtensions {
                state = .sparseExtension(sparse)
            } else {
                try startOldGNUSparse(sparse, handle)
            }
            return
        }
        let isZero = header.allSatisfy { $0 == 0 }
        if case .ended = state {
            // After the end, a header would be read by some readers and not by others.
            if !isZero, (try? verifyChecksum(header)) != nil {
                throw fail(
                    "another tar header follows the end-of-archive marker, at byte \(offset - 512): readers differ on whether to read on, so the archive is refused"
                )
            }
            state = .ended
            return
        }
        if isZero {
            guard longName == nil, longLink == nil, localPax.isEmpty else {
                throw fail("the tar archive ends after an extended header, before its entry")
            }
            state = .ended
            return
        }
        do {
            try verifyChecksum(header)
        } catch let error as AutoupdateError where entryCount == 0 && offset == 512 {
            throw fail("not a tar archive: its first header is invalid (\(error.message))", code: error.code)
        }

        let type = header[TarField.typeFlag.offset]
        let size = try Self.number(header, .size, at: offset - 512)
        let padding = Self.padding(size)
        switch type {
        case UInt8(ascii: "x"), UInt8(ascii: "X"), UInt8(ascii: "g"), UInt8(ascii: "L"), UInt8(ascii: "K"):
            let kind: ExtendedKind =
                switch type {
                case UInt8(ascii: "x"), UInt8(ascii: "X"): .pax
                case UInt8(ascii: "g"): .globalPax
                case UInt8(ascii: "L"): .longName
                default: .longLink
                }
            guard size <= kind.limit else {
                throw fail("a \(kind.label) of \(size) bytes is larger than the limit of \(kind.limit)", code: .sizeLimitExceeded)
            }
            extended.removeAll(keepingCapacity: true)
            state = size > 0 ? .extended(kind, remaining: size, padding: padding) : .header
            if size == 0 {
                try applyExtended(kind)
            }
            return
        case UInt8(ascii: "V"), UInt8(ascii: "A"):
            // A volume label, a Solaris ACL: metadata, not entries.
            state = size > 0 ? .skip(remaining: size + padding) : .header
            return
        default:
            break
        }

        let path = try entryPath(header)
        let kind: ArchiveEntry.Kind
        switch type {
        case UInt8(ascii: "0"), 0, UInt8(ascii: "7"):
            // A trailing slash on a regular-file entry is how pre-POSIX tars marked directories.
            kind = path.hasSuffix("/") && type == 0 ? .directory : .file
        case UInt8(ascii: "5"), UInt8(ascii: "D"):
            kind = .directory
        case UInt8(ascii: "2"):
            kind = .symlink(target: try linkTarget(header, path: path))
        case UInt8(ascii: "1"):
            kind = .hardlink(target: try linkTarget(header, path: path))
        case UInt8(ascii: "S"):
            kind = .file
        case UInt8(ascii: "3"), UInt8(ascii: "4"):
            throw fail("entry \(quoted(path)) is a device file; devices are refused", code: .unsafeEntry)
        case UInt8(ascii: "6"):
            throw fail("entry \(quoted(path)) is a FIFO; FIFOs are refused", code: .unsafeEntry)
        default:
            let shown = (32..<127).contains(type) ? "'\(Character(Unicode.Scalar(type)))'" : "0x\(String(type, radix: 16))"
            throw fail("entry \(quoted(path)) has the unsupported tar type \(shown)", code: .unsupportedArchive)
        }
        let paxSize = try paxNumber("size")
        let mode = UInt32(try Self.number(header, .mode, at: offset - 512) & 0o7777)
        let mtime = try paxNumber("mtime") ?? Self.number(header, .modificationTime, at: offset - 512)
        let pax = localPax
        localPax = PaxRecords()
        longName = nil
        longLink = nil
        entryCount += 1

        // What follows the header: a file's data; a dumpdir's listing (skipped); for a hard link
        // with a pax size, its data (skipped); nothing for the other types.
        let stored: Int64 =
            switch type {
            case UInt8(ascii: "1"): paxSize ?? 0
            case UInt8(ascii: "2"), UInt8(ascii: "5"): 0
            default: paxSize ?? size
            }
        if type == UInt8(ascii: "S") {
            let sparse = try OldGNUSparse(header: header, path: path, mode: mode, modificationTime: mtime, stored: stored, reader: &self)
            if sparse.hasMoreExtensions {
                state = .sparseExtension(sparse)
            } else {
                try startOldGNUSparse(sparse, handle)
            }
            return
        }
        if kind == .file, let sparse = try PaxSparse(pax, path: path, stored: stored, reader: &self) {
            let entry = ArchiveEntry(path: sparse.name, kind: .file, mode: mode, size: sparse.realSize, modificationTime: mtime)
            try handle(.entry(entry))
            switch sparse.map {
            case .known(let segments):
                let cursor = try SparseCursor(
                    segments: segments, realSize: sparse.realSize, stored: stored, path: sparse.name, reader: &self)
                try start(cursor, storedRemaining: stored, padding: Self.padding(stored), handle)
            case .inData:
                let pending = SparsePending(path: sparse.name, realSize: sparse.realSize)
                guard stored > 0 else {
                    throw fail("the sparse file \(quoted(sparse.name)) has no room for its map")
                }
                state = .sparseMap(pending, remaining: stored, padding: Self.padding(stored))
            }
            return
        }
        let entry = ArchiveEntry(path: path, kind: kind, mode: mode, size: kind == .file ? stored : 0, modificationTime: mtime)
        try handle(.entry(entry))
        if kind == .file, stored > 0 {
            state = .data(remaining: stored, padding: Self.padding(stored))
        } else {
            try handle(.entryEnd)
            state = stored > 0 ? .skip(remaining: stored + Self.padding(stored)) : .header
        }
    }

    static func padding(_ size: Int64) -> Int64 {
        (Int64(blockSize) - size % Int64(blockSize)) % Int64(blockSize)
    }

    /// Starts delivering a sparse file's stored data along its map (the entry event was sent).
    private mutating func start(
        _ cursor: SparseCursor, storedRemaining: Int64, padding: Int64, _ handle: (ArchiveEvent) throws -> Void
    ) throws {
        var cursor = cursor
        if cursor.isComplete {
            try cursor.finish(handle)
            try handle(.entryEnd)
            state = storedRemaining + padding > 0 ? .skip(remaining: storedRemaining + padding) : .header
        } else {
            state = .sparseData(cursor, padding: padding)
        }
    }

    private mutating func startOldGNUSparse(_ sparse: OldGNUSparse, _ handle: (ArchiveEvent) throws -> Void) throws {
        let entry = ArchiveEntry(
            path: sparse.path, kind: .file, mode: sparse.mode, size: sparse.realSize, modificationTime: sparse.modificationTime)
        try handle(.entry(entry))
        let cursor = try SparseCursor(
            segments: sparse.segments, realSize: sparse.realSize, stored: sparse.stored, path: sparse.path, reader: &self)
        try start(cursor, storedRemaining: sparse.stored, padding: Self.padding(sparse.stored), handle)
    }

    private func verifyChecksum(_ header: UnsafeRawBufferPointer) throws {
        let stored = try Self.number(header, .checksum, at: offset - 512)
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for (index, byte) in header.enumerated() {
            let value = TarField.checksum.range.contains(index) ? 0x20 : byte
            unsigned += Int64(value)
            signed += Int64(Int8(bitPattern: value))
        }
        guard stored == unsigned || stored == signed else {
            throw AutoupdateError(
                .checksumMismatch,
                entryCount == 0 && offset == 512
                    ? "the header checksum does not match"
                    : "tar header checksum mismatch at byte \(offset - 512) (after \(entryCount) entries)")
        }
    }

    private mutating func entryPath(_ header: UnsafeRawBufferPointer) throws -> String {
        if let path = try localPax.name("path") {
            return path
        }
        if let longName {
            return longName
        }
        let name = Self.field(header, .name)
        // POSIX ustar splits long names into prefix/name; old GNU uses those bytes otherwise.
        let isPOSIX = header[TarField.magic].elementsEqual("ustar\0".utf8)
        let prefix = isPOSIX ? Self.field(header, .prefix) : header[0..<0]
        let what = "the name of the entry at byte \(offset - 512)"
        if prefix.isEmpty {
            return try decodeName(name, what: what)
        }
        return try decodeName(prefix, what: what) + "/" + decodeName(name, what: what)
    }

    private mutating func linkTarget(_ header: UnsafeRawBufferPointer, path: String) throws -> String {
        if let target = try localPax.name("linkpath") ?? longLink {
            return target
        }
        return try decodeName(Self.field(header, .linkName), what: "the link target of entry \(quoted(path))")
    }

    private func paxNumber(_ key: String) throws -> Int64? {
        guard let text = localPax.text(key) ?? (key == "mtime" ? globalPax.text(key) : nil) else {
            return nil
        }
        // mtime may carry a fraction ("1700000000.123"); whole seconds are enough here.
        let whole = key == "mtime" ? String(text.prefix { $0 != "." }) : text
        guard let value = Int64(whole), value >= 0 || key == "mtime" else {
            throw AutoupdateError(.corruptArchive, "pax header has an invalid \(key) \(quoted(text))")
        }
        return value
    }

    private mutating func applyExtended(_ kind: ExtendedKind) throws {
        let data = extended
        extended.removeAll(keepingCapacity: true)
        switch kind {
        case .longName, .longLink:
            // GNU terminates the name with a NUL (and may pad with more).
            let bytes = data.prefix { $0 != 0 }
            let name = try decodeName(bytes, what: "a \(kind.label)")
            if kind == .longName { longName = name } else { longLink = name }
        case .pax:
            // A later pax header replaces an earlier one; records do not accumulate.
            localPax = try PaxRecords(data)
        case .globalPax:
            let records = try PaxRecords(data)
            for key in ["path", "linkpath", "size"] where records.value(key) != nil {
                throw fail(
                    "a pax global header sets \(quoted(key)): readers disagree on whether it applies to every later entry, so the archive is refused",
                    code: .unsupportedArchive)
            }
            globalPax.merge(records)
        }
    }

    /// A NUL-terminated string field.
    static func field(_ header: UnsafeRawBufferPointer, _ field: TarField) -> Slice<UnsafeRawBufferPointer> {
        header[field].prefix { $0 != 0 }
    }

    /// A numeric field: octal (leading spaces, terminated by a space or NUL), or GNU base-256
    /// when the high bit of its first byte is set.
    static func number(_ header: UnsafeRawBufferPointer, _ tarField: TarField, at offset: Int64) throws -> Int64 {
        let bytes = header[tarField]
        let field = tarField.name
        if let first = bytes.first, first & 0x80 != 0 {
            guard first != 0xFF else {
                throw AutoupdateError(.corruptArchive, "tar header at byte \(offset) has a negative \(field)")
            }
            var value = Int64(first & 0x7F)
            for byte in bytes.dropFirst() {
                guard value <= Int64.max >> 8 else {
                    throw AutoupdateError.tarNumberOutOfRange(field, at: offset)
                }
                value = value << 8 | Int64(byte)
            }
            return value
        }
        var digits = bytes.drop { $0 == UInt8(ascii: " ") || $0 == 0 }
        var value: Int64 = 0
        while let byte = digits.first, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "7") {
            guard value <= Int64.max >> 3 else {
                throw AutoupdateError.tarNumberOutOfRange(field, at: offset)
            }
            value = value << 3 | Int64(byte - UInt8(ascii: "0"))
            digits = digits.dropFirst()
        }
        guard digits.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == 0 }) else {
            throw AutoupdateError(.corruptArchive, "tar header at byte \(offset) has an invalid \(field) field")
        }
        return value
    }
}

/// The records of one pax header, in order; a key may repeat (GNU sparse 0.0 repeats its
/// offsets and sizes), and its last value counts. Values are bytes: extended attributes
/// (`SCHILY.xattr.*`) are binary by design; only the values used as names are decoded.
struct PaxRecords {
    private(set) var records: [(key: String, value: [UInt8])] = []

    init() {}

    /// Parses `"<length> <key>=<value>\n"` records, where length counts the whole record.
    init(_ data: [UInt8]) throws {
        var index = 0
        while index < data.count {
            guard let space = data[index...].firstIndex(of: UInt8(ascii: " ")),
                let length = Int(String(decoding: data[index..<space], as: UTF8.self)),
                length > space - index + 1, index + length <= data.count,
                data[index + length - 1] == UInt8(ascii: "\n")
            else {
                throw AutoupdateError(.corruptArchive, "a pax header record is malformed at offset \(index)")
            }
            let record = data[(space + 1)..<(index + length - 1)]
            guard let equals = record.firstIndex(of: UInt8(ascii: "=")) else {
                throw AutoupdateError(.corruptArchive, "a pax header record has no '=' at offset \(index)")
            }
            let key = try decodeName(record[record.startIndex..<equals], what: "a pax header key")
            records.append((key, Array(record[(equals + 1)...])))
            index += length
        }
    }

    var isEmpty: Bool { records.isEmpty }

    func value(_ key: String) -> [UInt8]? {
        records.last { $0.key == key }?.value
    }

    /// Every value of a key, in order.
    func values(_ key: String) -> [[UInt8]] {
        records.filter { $0.key == key }.map(\.value)
    }

    /// A value as text (numbers, versions); `nil` when absent or not UTF-8.
    func text(_ key: String) -> String? {
        value(key).flatMap { String(validating: $0, as: UTF8.self) }
    }

    /// A value used as a name (`path`, `linkpath`): no NUL, UTF-8 (see ``decodeName(_:what:)``).
    func name(_ key: String) throws -> String? {
        try value(key).map { try decodeName($0, what: "the pax value of \(quoted(key))") }
    }

    mutating func merge(_ other: PaxRecords) {
        records += other.records
    }
}

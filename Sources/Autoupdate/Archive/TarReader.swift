/// Reads a tar stream: ustar, old GNU (long names and long link names: `L`, `K`) and pax
/// (extended headers `x` and global headers `g`: path, linkpath, size, mtime).
///
/// Sans-I/O: feed it chunks of any size (one byte included) and it calls back with
/// ``ArchiveEvent``s; entry data is handed over without copying. Regular files, directories,
/// symlinks and hard links are read; every other type (devices, FIFOs, sparse files, volume
/// labels, …) is refused, naming the entry. Header checksums are verified, and the archive must end
/// with its two zero blocks, followed by nothing but zero padding. Once it fails, it keeps failing.
struct TarReader {
    private enum State {
        case header
        /// A pax header or a GNU long name or link name: its data is collected, then applied.
        case extended(ExtendedKind, remaining: Int64, padding: Int64)
        case data(remaining: Int64, padding: Int64)
        case skip(remaining: Int64)
        /// After the first zero block: the second must follow.
        case endMarker
        /// After the end marker: zero padding only.
        case trailing
        case failed(AutoupdateError)
    }

    private enum ExtendedKind {
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
    private var localPax: [String: String] = [:]
    private var globalPax: [String: String] = [:]
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
        case .trailing:
            return
        case .header where block.isEmpty && entryCount == 0 && offset == 0:
            throw fail("the tar archive is empty")
        case .endMarker:
            throw fail("the tar archive is truncated: only one of the two zero blocks that end it")
        case .data, .extended, .skip:
            throw fail("the tar archive is truncated inside an entry's data, at byte \(offset)")
        case .header:
            throw fail(block.isEmpty
                ? "the tar archive is truncated: no end-of-archive marker after byte \(offset)"
                : "the tar archive is truncated inside a header, at byte \(offset)")
        }
    }

    private mutating func fail(_ message: String, code: AutoupdateError.Code = .corruptArchive) -> AutoupdateError {
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
            case .header, .endMarker:
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
            case .trailing:
                guard let garbage = rest.firstIndex(where: { $0 != 0 }) else {
                    offset += Int64(rest.count)
                    return
                }
                throw fail("unexpected data after the tar end-of-archive marker, at byte \(offset + Int64(garbage - rest.startIndex))")
            }
        }
    }

    // MARK: Headers

    private mutating func processBlock(_ header: UnsafeRawBufferPointer, _ handle: (ArchiveEvent) throws -> Void) throws {
        let isZero = header.allSatisfy { $0 == 0 }
        if case .endMarker = state {
            guard isZero else {
                throw fail("a lone zero block inside the tar archive, at byte \(offset - 1024)")
            }
            state = .trailing
            return
        }
        if isZero {
            guard longName == nil, longLink == nil, localPax.isEmpty else {
                throw fail("the tar archive ends after an extended header, before its entry")
            }
            state = .endMarker
            return
        }
        do {
            try verifyChecksum(header)
        } catch let error as AutoupdateError where entryCount == 0 && offset == 512 {
            throw fail("not a tar archive: its first header is invalid (\(error.message))", code: error.code)
        }

        let type = header[156]
        let size = try Self.number(header, 124, 12, field: "size", at: offset - 512)
        let padding = (Int64(Self.blockSize) - size % Int64(Self.blockSize)) % Int64(Self.blockSize)
        switch type {
        case UInt8(ascii: "x"), UInt8(ascii: "g"), UInt8(ascii: "L"), UInt8(ascii: "K"):
            let kind: ExtendedKind = switch type {
            case UInt8(ascii: "x"): .pax
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
        default:
            break
        }

        let path = try entryPath(header)
        let kind: ArchiveEntry.Kind
        switch type {
        case UInt8(ascii: "0"), 0, UInt8(ascii: "7"):
            // A trailing slash on a regular-file entry is how pre-POSIX tars marked directories.
            kind = path.hasSuffix("/") && type == 0 ? .directory : .file
        case UInt8(ascii: "5"):
            kind = .directory
        case UInt8(ascii: "2"):
            kind = .symlink(target: try linkTarget(header, path: path))
        case UInt8(ascii: "1"):
            kind = .hardlink(target: try linkTarget(header, path: path))
        case UInt8(ascii: "3"), UInt8(ascii: "4"):
            throw fail("entry \(quoted(path)) is a device file; devices are refused", code: .unsafeEntry)
        case UInt8(ascii: "6"):
            throw fail("entry \(quoted(path)) is a FIFO; FIFOs are refused", code: .unsafeEntry)
        case UInt8(ascii: "S"):
            throw fail("entry \(quoted(path)) is a GNU sparse file, which is not supported", code: .unsupportedArchive)
        default:
            let shown = (32..<127).contains(type) ? "'\(Character(Unicode.Scalar(type)))'" : "0x\(String(type, radix: 16))"
            throw fail("entry \(quoted(path)) has the unsupported tar type \(shown)", code: .unsupportedArchive)
        }
        let declaredSize = try paxNumber("size") ?? size
        let mode = UInt32(try Self.number(header, 100, 8, field: "mode", at: offset - 512) & 0o7777)
        let mtime = try paxNumber("mtime") ?? Self.number(header, 136, 12, field: "mtime", at: offset - 512)
        localPax = [:]
        longName = nil
        longLink = nil
        entryCount += 1

        let entry = ArchiveEntry(path: path, kind: kind, mode: mode, size: kind == .file ? declaredSize : 0, modificationTime: mtime)
        try handle(.entry(entry))
        // Only regular files have content; any data another type declares is skipped.
        let dataPadding = (Int64(Self.blockSize) - declaredSize % Int64(Self.blockSize)) % Int64(Self.blockSize)
        if kind == .file, declaredSize > 0 {
            state = .data(remaining: declaredSize, padding: dataPadding)
        } else {
            try handle(.entryEnd)
            state = declaredSize > 0 ? .skip(remaining: declaredSize + dataPadding) : .header
        }
    }

    private mutating func verifyChecksum(_ header: UnsafeRawBufferPointer) throws {
        let stored = try Self.number(header, 148, 8, field: "checksum", at: offset - 512)
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for (index, byte) in header.enumerated() {
            let value = (148..<156).contains(index) ? 0x20 : byte
            unsigned += Int64(value)
            signed += Int64(Int8(bitPattern: value))
        }
        guard stored == unsigned || stored == signed else {
            throw fail(entryCount == 0 && offset == 512
                ? "the header checksum does not match"
                : "tar header checksum mismatch at byte \(offset - 512) (after \(entryCount) entries)",
                code: .checksumMismatch)
        }
    }

    private mutating func entryPath(_ header: UnsafeRawBufferPointer) throws -> String {
        if let path = localPax["path"] ?? globalPax["path"] {
            return path
        }
        if let longName {
            return longName
        }
        let name = Self.field(header, 0, 100)
        // POSIX ustar splits long names into prefix/name; old GNU uses those bytes otherwise.
        let isPOSIX = Self.field(header, 257, 6).elementsEqual("ustar".utf8) && header[262] == 0
        let prefix = isPOSIX ? Self.field(header, 345, 155) : header[0..<0]
        let what = "the name of the entry at byte \(offset - 512)"
        if prefix.isEmpty {
            return try decodeName(name, what: what)
        }
        return try decodeName(prefix, what: what) + "/" + decodeName(name, what: what)
    }

    private mutating func linkTarget(_ header: UnsafeRawBufferPointer, path: String) throws -> String {
        if let target = localPax["linkpath"] ?? globalPax["linkpath"] ?? longLink {
            return target
        }
        return try decodeName(Self.field(header, 157, 100), what: "the link target of entry \(quoted(path))")
    }

    private func paxNumber(_ key: String) throws -> Int64? {
        guard let text = localPax[key] ?? globalPax[key] else {
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
        case .pax, .globalPax:
            let records = try Self.paxRecords(data)
            for (key, _) in records where key.hasPrefix("GNU.sparse.") {
                throw fail("a pax header describes a GNU sparse file, which is not supported", code: .unsupportedArchive)
            }
            if kind == .pax {
                localPax.merge(records) { $1 }
            } else {
                globalPax.merge(records) { $1 }
            }
        }
    }

    /// Parses pax records: `"<length> <key>=<value>\n"`, where length counts the whole record.
    static func paxRecords(_ data: [UInt8]) throws -> [String: String] {
        var records: [String: String] = [:]
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
            let value = try decodeName(record[(equals + 1)...], what: "the pax value of \(quoted(key))")
            records[key] = value
            index += length
        }
        return records
    }

    /// A NUL-terminated string field.
    private static func field(_ header: UnsafeRawBufferPointer, _ start: Int, _ length: Int) -> Slice<UnsafeRawBufferPointer> {
        let bytes = header[start..<(start + length)]
        return bytes.prefix { $0 != 0 }
    }

    /// A numeric field: octal (leading spaces, terminated by a space or NUL), or GNU base-256
    /// when the high bit of its first byte is set.
    static func number(_ header: UnsafeRawBufferPointer, _ start: Int, _ length: Int, field: String, at offset: Int64) throws -> Int64 {
        let bytes = header[start..<(start + length)]
        if let first = bytes.first, first & 0x80 != 0 {
            guard first != 0xFF else {
                throw AutoupdateError(.corruptArchive, "tar header at byte \(offset) has a negative \(field)")
            }
            var value = Int64(first & 0x7F)
            for byte in bytes.dropFirst() {
                guard value <= Int64.max >> 8 else {
                    throw AutoupdateError(.corruptArchive, "tar header at byte \(offset) has an out-of-range \(field)")
                }
                value = value << 8 | Int64(byte)
            }
            return value
        }
        var digits = bytes.drop { $0 == UInt8(ascii: " ") || $0 == 0 }
        var value: Int64 = 0
        while let byte = digits.first, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "7") {
            guard value <= Int64.max >> 3 else {
                throw AutoupdateError(.corruptArchive, "tar header at byte \(offset) has an out-of-range \(field)")
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

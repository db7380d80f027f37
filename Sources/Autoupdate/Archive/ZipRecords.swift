/// The zip format's records (APPNOTE.TXT 6.3) and the helpers the streaming and the spooled
/// readers share.
enum ZipSignature {
    static let localFileHeader: UInt32 = 0x0403_4B50
    static let dataDescriptor: UInt32 = 0x0807_4B50
    static let centralDirectory: UInt32 = 0x0201_4B50
    static let endOfCentralDirectory: UInt32 = 0x0605_4B50
    static let zip64EndOfCentralDirectory: UInt32 = 0x0606_4B50
    static let zip64Locator: UInt32 = 0x0706_4B50
}

/// Little-endian fields of a record.
struct ByteReader {
    private let bytes: [UInt8]
    private(set) var position: Int

    init(_ bytes: [UInt8], at position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    var remaining: Int { bytes.count - position }

    mutating func u16() throws -> UInt16 {
        try need(2)
        defer { position += 2 }
        return UInt16(bytes[position]) | UInt16(bytes[position + 1]) << 8
    }

    mutating func u32() throws -> UInt32 {
        try need(4)
        defer { position += 4 }
        return (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[position + $1]) << (8 * $1) }
    }

    mutating func u64() throws -> UInt64 {
        try need(8)
        defer { position += 8 }
        return (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[position + $1]) << (8 * $1) }
    }

    mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        try need(count)
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    private func need(_ count: Int) throws {
        guard count >= 0, position + count <= bytes.count else {
            throw AutoupdateError(.corruptArchive, "a zip record is truncated")
        }
    }
}

/// What a local file header says.
struct ZipLocalHeader {
    var flags: UInt16
    var method: UInt16
    var crc: UInt32
    var compressedSize: Int64
    var uncompressedSize: Int64
    var rawName: ArraySlice<UInt8>
    var name: String
    /// The zip64 extra field was present: sizes (also in a data descriptor) are 64-bit.
    var isZip64: Bool
    var modificationTime: Int64?
    /// Bytes of the header, name and extra field together.
    var length: Int

    var isEncrypted: Bool { flags & 0x0001 != 0 || flags & 0x0040 != 0 }
    var hasDataDescriptor: Bool { flags & 0x0008 != 0 }

    static let fixedLength = 30

    /// Parses a complete local header (`bytes` starts at its signature).
    static func parse(_ bytes: [UInt8], at offset: Int64) throws -> ZipLocalHeader {
        var reader = ByteReader(bytes)
        _ = try reader.u32()
        _ = try reader.u16()  // version needed
        let flags = try reader.u16()
        let method = try reader.u16()
        let time = try reader.u16()
        let date = try reader.u16()
        let crc = try reader.u32()
        let compressed32 = try reader.u32()
        let uncompressed32 = try reader.u32()
        let nameLength = Int(try reader.u16())
        let extraLength = Int(try reader.u16())
        let rawName = try reader.take(nameLength)
        let extra = try reader.take(extraLength)
        let fields = ZipExtraFields(extra)

        var compressed = Int64(compressed32)
        var uncompressed = Int64(uncompressed32)
        var isZip64 = false
        if let zip64 = fields[0x0001] {
            // In a local header the zip64 field holds both sizes (APPNOTE 4.5.3).
            isZip64 = true
            var values = ByteReader(Array(zip64))
            if values.remaining >= 16 {
                uncompressed = Int64(bitPattern: try values.u64())
                compressed = Int64(bitPattern: try values.u64())
            } else {
                if uncompressed32 == .max { uncompressed = Int64(bitPattern: try values.u64()) }
                if compressed32 == .max { compressed = Int64(bitPattern: try values.u64()) }
            }
        }
        guard compressed >= 0, uncompressed >= 0 else {
            throw AutoupdateError(.corruptArchive, "the zip entry at byte \(offset) declares a negative size")
        }
        let name = try zipName(rawName: rawName, flags: flags, extra: fields, at: offset)
        return ZipLocalHeader(
            flags: flags, method: method, crc: crc, compressedSize: compressed, uncompressedSize: uncompressed,
            rawName: rawName, name: name, isZip64: isZip64,
            modificationTime: fields.unixModificationTime ?? dosTime(date: date, time: time),
            length: fixedLength + nameLength + extraLength)
    }
}

/// What a central directory record says.
struct ZipCentralRecord {
    var versionMadeBy: UInt16
    var flags: UInt16
    var method: UInt16
    var crc: UInt32
    var compressedSize: Int64
    var uncompressedSize: Int64
    var name: String
    var externalAttributes: UInt32
    var localHeaderOffset: Int64

    /// The Unix `st_mode`, when the archive was made on Unix (host 3) and records one.
    var unixMode: UInt32? {
        guard versionMadeBy >> 8 == 3 else { return nil }
        let mode = externalAttributes >> 16
        return mode == 0 ? nil : mode
    }

    static func parse(_ reader: inout ByteReader) throws -> ZipCentralRecord {
        let start = reader.position
        guard try reader.u32() == ZipSignature.centralDirectory else {
            throw AutoupdateError(.corruptArchive, "the zip central directory has a bad record at offset \(start)")
        }
        let versionMadeBy = try reader.u16()
        _ = try reader.u16()  // version needed
        let flags = try reader.u16()
        let method = try reader.u16()
        _ = try reader.u32()  // time and date
        let crc = try reader.u32()
        let compressed32 = try reader.u32()
        let uncompressed32 = try reader.u32()
        let nameLength = Int(try reader.u16())
        let extraLength = Int(try reader.u16())
        let commentLength = Int(try reader.u16())
        let disk = try reader.u16()
        _ = try reader.u16()  // internal attributes
        let external = try reader.u32()
        let offset32 = try reader.u32()
        let rawName = try reader.take(nameLength)
        let fields = ZipExtraFields(try reader.take(extraLength))
        _ = try reader.take(commentLength)

        var compressed = Int64(compressed32)
        var uncompressed = Int64(uncompressed32)
        var offset = Int64(offset32)
        if let zip64 = fields[0x0001] {
            // Only the fields whose 32-bit value is 0xFFFFFFFF are present, in this order.
            var values = ByteReader(Array(zip64))
            if uncompressed32 == .max { uncompressed = Int64(bitPattern: try values.u64()) }
            if compressed32 == .max { compressed = Int64(bitPattern: try values.u64()) }
            if offset32 == .max { offset = Int64(bitPattern: try values.u64()) }
        }
        guard disk == 0 || disk == .max else {
            throw AutoupdateError.zipSpansDisks()
        }
        guard compressed >= 0, uncompressed >= 0, offset >= 0 else {
            throw AutoupdateError(.corruptArchive, "the zip central directory declares a negative size or offset")
        }
        let name = try zipName(rawName: rawName, flags: flags, extra: fields, at: Int64(start))
        return ZipCentralRecord(
            versionMadeBy: versionMadeBy, flags: flags, method: method, crc: crc, compressedSize: compressed,
            uncompressedSize: uncompressed, name: name, externalAttributes: external, localHeaderOffset: offset)
    }
}

/// The end of a zip archive: where its central directory is and how many entries it has.
struct ZipEnd {
    var entryCount: Int64
    var centralDirectoryOffset: Int64
    var centralDirectorySize: Int64

    /// Parses the end records found in `bytes` starting at `position` (zip64 record and locator,
    /// if any, then the end-of-central-directory record and its comment, which must end `bytes`).
    static func parse(_ bytes: [UInt8], at position: Int) throws -> ZipEnd {
        var reader = ByteReader(bytes, at: position)
        var zip64: ZipEnd?
        var signature = try reader.u32()
        if signature == ZipSignature.zip64EndOfCentralDirectory {
            let size = try reader.u64()
            guard size >= 44, size < 1 << 20 else {
                throw AutoupdateError(.corruptArchive, "the zip64 end record has an invalid size")
            }
            _ = try reader.u16()
            _ = try reader.u16()
            let disk = try reader.u32()
            let directoryDisk = try reader.u32()
            _ = try reader.u64()
            let total = try reader.u64()
            let directorySize = try reader.u64()
            let directoryOffset = try reader.u64()
            _ = try reader.take(Int(size) - 44)
            guard disk == 0, directoryDisk == 0 else {
                throw AutoupdateError.zipSpansDisks()
            }
            guard total < 1 << 40, directorySize < 1 << 40, directoryOffset < 1 << 60 else {
                throw AutoupdateError(.corruptArchive, "the zip64 end record holds impossible values")
            }
            zip64 = ZipEnd(
                entryCount: Int64(total), centralDirectoryOffset: Int64(directoryOffset), centralDirectorySize: Int64(directorySize))
            guard try reader.u32() == ZipSignature.zip64Locator else {
                throw AutoupdateError(.corruptArchive, "the zip64 end record is not followed by its locator")
            }
            _ = try reader.take(16)
            signature = try reader.u32()
        }
        guard signature == ZipSignature.endOfCentralDirectory else {
            throw AutoupdateError(.corruptArchive, "the zip archive has no valid end-of-central-directory record")
        }
        let disk = try reader.u16()
        let directoryDisk = try reader.u16()
        _ = try reader.u16()
        let total16 = try reader.u16()
        let size32 = try reader.u32()
        let offset32 = try reader.u32()
        let commentLength = Int(try reader.u16())
        _ = try reader.take(commentLength)
        // Bytes after the end record are ignored (as Go, CPython and unzip do), unless they
        // hold a zip record: readers that search backwards for the end would read that instead.
        if let record = ZipReader.firstRecordSignature(in: bytes[reader.position...]) {
            throw AutoupdateError(
                .corruptArchive,
                "unexpected data after the zip archive's end record: a zip record at \(record) bytes after it, which readers that search from the end would take instead"
            )
        }
        guard disk == 0 || disk == .max, directoryDisk == 0 || directoryDisk == .max else {
            throw AutoupdateError.zipSpansDisks()
        }
        if let zip64 {
            return zip64
        }
        return ZipEnd(entryCount: Int64(total16), centralDirectoryOffset: Int64(offset32), centralDirectorySize: Int64(size32))
    }
}

/// The extra fields of a header, by id.
struct ZipExtraFields {
    private var fields: [UInt16: ArraySlice<UInt8>] = [:]

    init(_ bytes: ArraySlice<UInt8>) {
        var index = bytes.startIndex
        while index + 4 <= bytes.endIndex {
            let id = UInt16(bytes[index]) | UInt16(bytes[index + 1]) << 8
            let length = Int(UInt16(bytes[index + 2]) | UInt16(bytes[index + 3]) << 8)
            let start = index + 4
            guard start + length <= bytes.endIndex else { break }
            fields[id] = bytes[start..<(start + length)]
            index = start + length
        }
    }

    subscript(id: UInt16) -> ArraySlice<UInt8>? { fields[id] }

    /// The modification time of the "extended timestamp" field (0x5455), in Unix seconds.
    var unixModificationTime: Int64? {
        guard let field = fields[0x5455], field.count >= 5, field[field.startIndex] & 1 != 0 else { return nil }
        let start = field.startIndex + 1
        let value = (0..<4).reduce(UInt32(0)) { $0 | UInt32(field[start + $1]) << (8 * $1) }
        return Int64(Int32(bitPattern: value))
    }
}

/// An entry name: UTF-8 when flag bit 11 says so or the Info-ZIP Unicode path field (0x7075)
/// matches the header's name; otherwise UTF-8 if the bytes are valid UTF-8 (Info-ZIP `zip` on
/// Linux stores UTF-8 names without either mark, and `unzip` reads them so), else IBM code page
/// 437 as the format defines. CP437 text with bytes above 0x7F is practically never valid UTF-8.
func zipName(rawName: ArraySlice<UInt8>, flags: UInt16, extra: ZipExtraFields, at offset: Int64) throws -> String {
    let what = "the name of the zip entry at byte \(offset)"
    if flags & 0x0800 != 0 {
        return try decodeName(rawName, what: what)
    }
    if let unicode = extra[0x7075], unicode.count > 5, unicode[unicode.startIndex] == 1 {
        let start = unicode.startIndex + 1
        let storedCRC = (0..<4).reduce(UInt32(0)) { $0 | UInt32(unicode[start + $1]) << (8 * $1) }
        var crc = CRC32()
        Array(rawName).withUnsafeBytes { crc.update($0) }
        if crc.value == storedCRC {
            return try decodeName(unicode[(start + 4)...], what: what)
        }
    }
    guard !rawName.contains(0) else {
        throw AutoupdateError.nulByte(in: what)
    }
    if let name = String(validating: rawName, as: UTF8.self) {
        return name
    }
    return String(String.UnicodeScalarView(rawName.map { codePage437[Int($0)] }))
}

/// IBM code page 437: ASCII, then these 128 characters for bytes 0x80–0xFF.
let codePage437: [Unicode.Scalar] = {
    let high: [UInt32] = [
        0xC7, 0xFC, 0xE9, 0xE2, 0xE4, 0xE0, 0xE5, 0xE7, 0xEA, 0xEB, 0xE8, 0xEF, 0xEE, 0xEC, 0xC4, 0xC5,
        0xC9, 0xE6, 0xC6, 0xF4, 0xF6, 0xF2, 0xFB, 0xF9, 0xFF, 0xD6, 0xDC, 0xA2, 0xA3, 0xA5, 0x20A7, 0x192,
        0xE1, 0xED, 0xF3, 0xFA, 0xF1, 0xD1, 0xAA, 0xBA, 0xBF, 0x2310, 0xAC, 0xBD, 0xBC, 0xA1, 0xAB, 0xBB,
        0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562, 0x2556, 0x2555, 0x2563, 0x2551, 0x2557, 0x255D, 0x255C, 0x255B, 0x2510,
        0x2514, 0x2534, 0x252C, 0x251C, 0x2500, 0x253C, 0x255E, 0x255F, 0x255A, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256C, 0x2567,
        0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256B, 0x256A, 0x2518, 0x250C, 0x2588, 0x2584, 0x258C, 0x2590, 0x2580,
        0x3B1, 0xDF, 0x393, 0x3C0, 0x3A3, 0x3C3, 0xB5, 0x3C4, 0x3A6, 0x398, 0x3A9, 0x3B4, 0x221E, 0x3C6, 0x3B5, 0x2229,
        0x2261, 0xB1, 0x2265, 0x2264, 0x2320, 0x2321, 0xF7, 0x2248, 0xB0, 0x2219, 0xB7, 0x221A, 0x207F, 0xB2, 0x25A0, 0xA0,
    ]
    return (0..<128).map { Unicode.Scalar(UInt8($0)) } + high.map { Unicode.Scalar($0)! }
}()

/// An MS-DOS date and time, read as UTC.
func dosTime(date: UInt16, time: UInt16) -> Int64? {
    let year = Int(date >> 9) + 1980
    let month = Int(date >> 5 & 0x0F)
    let day = Int(date & 0x1F)
    guard (1...12).contains(month), (1...31).contains(day) else { return nil }
    let hour = Int(time >> 11)
    let minute = Int(time >> 5 & 0x3F)
    let second = Int(time & 0x1F) * 2
    // Days from civil (Howard Hinnant's algorithm), to avoid time zone databases.
    let y = month <= 2 ? year - 1 : year
    let era = y / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    let days = era * 146_097 + dayOfEra - 719_468
    return Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
}

/// A compression method's name for messages.
func zipMethodName(_ method: UInt16) -> String {
    switch method {
    case 0: "stored"
    case 8: "deflate"
    case 9: "deflate64"
    case 12: "bzip2"
    case 14: "LZMA"
    case 93: "Zstandard"
    case 95: "XZ"
    case 98: "PPMd"
    case 99: "AES encryption"
    default: "method \(method)"
    }
}

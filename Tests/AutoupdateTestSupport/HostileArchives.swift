import Foundation

/// Writes tar archives block by block, with any name, type, size or checksum, so tests can build
/// what no well-behaved tool would.
public struct TarBuilder {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    /// Appends a header (ustar) and, for content, its data padded to 512 bytes.
    ///
    /// - Parameters:
    ///   - declaredSize: The size field; defaults to the content's length.
    ///   - corruptChecksum: Writes a wrong checksum.
    ///   - rawName: The name field's bytes, when they are not UTF-8 text (a Latin-1 name).
    ///   - fields: Header bytes to set, by offset, before the checksum (an old GNU sparse map).
    public mutating func entry(
        _ name: String, type: Character = "0", content: [UInt8] = [], linkTarget: String = "",
        mode: Int = 0o644, declaredSize: Int? = nil, corruptChecksum: Bool = false, rawName: [UInt8]? = nil,
        fields: [Int: [UInt8]] = [:]
    ) {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, _ offset: Int, _ length: Int) {
            for (index, byte) in text.utf8.prefix(length).enumerated() { header[offset + index] = byte }
        }
        func octal(_ value: Int, _ offset: Int, _ length: Int) {
            put(String(String(value, radix: 8).suffix(length - 1)).leftPadded(to: length - 1), offset, length - 1)
        }
        put(name, 0, 100)
        if let rawName {
            for (index, byte) in rawName.prefix(100).enumerated() { header[index] = byte }
        }
        octal(mode, 100, 8)
        octal(0, 108, 8)
        octal(0, 116, 8)
        octal(declaredSize ?? content.count, 124, 12)
        octal(1_700_000_000, 136, 12)
        header[156] = type.asciiValue ?? UInt8(ascii: "0")
        put(linkTarget, 157, 100)
        put("ustar", 257, 6)
        put("00", 263, 2)
        for (offset, field) in fields {
            header.replaceSubrange(offset..<(offset + field.count), with: field)
        }
        for index in 148..<156 { header[index] = 0x20 }
        var sum = header.reduce(0) { $0 + Int($1) }
        if corruptChecksum { sum += 1 }
        put(String(String(sum, radix: 8)).leftPadded(to: 6), 148, 6)
        header[154] = 0
        bytes += header
        bytes += content
        bytes += [UInt8](repeating: 0, count: (512 - content.count % 512) % 512)
    }

    /// Appends a pax header (`x`; `g` for a global one, `X` for Sun's older form) holding
    /// `records` (values are bytes: extended attributes may be binary).
    public mutating func pax(_ records: [(String, [UInt8])], type: Character = "x") {
        var data: [UInt8] = []
        for (key, value) in records {
            let body = Array(" \(key)=".utf8) + value + [0x0A]
            var length = body.count + 1
            while String(length).count + body.count != length {
                length = String(length).count + body.count
            }
            data += Array(String(length).utf8) + body
        }
        entry("PaxHeaders/entry", type: type, content: data)
    }

    /// Appends raw bytes (a pax or GNU record, garbage).
    public mutating func raw(_ data: [UInt8]) {
        bytes += data
    }

    /// The two zero blocks that end an archive.
    public mutating func end() {
        bytes += [UInt8](repeating: 0, count: 1024)
    }
}

/// Writes zip archives record by record (stored entries, or deflate via a given compressor),
/// with control over every field that a hostile archive could lie in.
public struct ZipBuilder {
    public struct Entry {
        public var name: String
        public var centralName: String?
        public var content: [UInt8]
        public var flags: UInt16 = 0x0800
        public var method: UInt16 = 0
        public var compressed: [UInt8]?
        public var crc: UInt32?
        public var declaredSize: Int?
        public var unixMode: UInt32 = 0o100644
        /// Sizes and CRC in a data descriptor after the data (flag bit 3), as a zip written to a
        /// pipe has them; a stored entry like that cannot be framed as a stream.
        public var dataDescriptor = false
        /// Bytes before the entry's local header that no entry covers (a gap).
        public var gapBefore: [UInt8] = []
        /// The entry's comment in the central directory.
        public var centralComment: [UInt8] = []

        public init(_ name: String, _ content: [UInt8] = [], unixMode: UInt32 = 0o100644) {
            self.name = name
            self.content = content
            self.unixMode = unixMode
        }
    }

    public var entries: [Entry] = []
    /// Bytes before the first entry (a self-extracting stub): offsets count from the file's
    /// start when `offsetsIncludePrefix`, else from the archive's (as a stub added later leaves them).
    public var prefix: [UInt8] = []
    public var offsetsIncludePrefix = false
    /// Bytes after the end record.
    public var trailing: [UInt8] = []

    public init() {}

    public func build() -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        let base = offsetsIncludePrefix ? prefix.count : 0
        for entry in entries {
            out += entry.gapBefore
            let offset = out.count + base
            let data = entry.compressed ?? entry.content
            let crc = entry.crc ?? ZipBuilder.crc32(entry.content)
            let size = UInt32(entry.declaredSize ?? entry.content.count)
            let name = Array(entry.name.utf8)
            let flags = entry.flags | (entry.dataDescriptor ? 0x0008 : 0)
            out += le32(0x0403_4B50) + le16(20) + le16(flags) + le16(entry.method) + le16(0) + le16(0x5B21)
            if entry.dataDescriptor {
                out += le32(0) + le32(0) + le32(0) + le16(UInt16(name.count)) + le16(0) + name + data
                out += le32(0x0807_4B50) + le32(crc) + le32(UInt32(data.count)) + le32(size)
            } else {
                out += le32(crc) + le32(UInt32(data.count)) + le32(size) + le16(UInt16(name.count)) + le16(0) + name + data
            }
            let centralName = Array((entry.centralName ?? entry.name).utf8)
            central += le32(0x0201_4B50) + le16(0x031E) + le16(20) + le16(flags) + le16(entry.method) + le16(0) + le16(0x5B21)
            central += le32(crc) + le32(UInt32(data.count)) + le32(size) + le16(UInt16(centralName.count)) + le16(0)
            central += le16(UInt16(entry.centralComment.count)) + le16(0) + le16(0) + le32(entry.unixMode << 16) + le32(UInt32(offset))
            central += centralName + entry.centralComment
        }
        let directoryOffset = out.count + base
        out += central
        out += le32(0x0605_4B50) + le16(0) + le16(0) + le16(UInt16(entries.count)) + le16(UInt16(entries.count))
        out += le32(UInt32(central.count)) + le32(UInt32(directoryOffset)) + le16(0)
        return prefix + out + trailing
    }

    public static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    private func le16(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8)] }
    private func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(value >> (8 * $0) & 0xFF) } }
}

extension String {
    func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}

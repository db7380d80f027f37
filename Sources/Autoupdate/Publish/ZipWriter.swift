#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes a zip archive to a seekable file: deflated files, stored folders and symlinks, UTF-8
/// names, Unix modes, modification times, zip64 when sizes or offsets need it. Each local header
/// is patched once its entry is written, so the archive has no data descriptors and any
/// streaming reader can frame it.
final class ZipWriter {
    private let handle: OpenFile
    private var offset: UInt64 = 0
    private var central: [UInt8] = []
    private var count = 0
    private let deflater: DeflateStream
    private var needsZip64 = false

    init(handle: OpenFile) throws {
        self.handle = handle
        deflater = try DeflateStream(gzip: false)
    }

    /// Adds an entry.
    ///
    /// - Returns: Where its local header starts, and how many bytes the header and the data take.
    @discardableResult
    func add(_ entry: SourceTree.Entry, root: String) throws -> (offset: Int64, length: Int64) {
        let name = Array((entry.kind == .directory ? entry.path + "/" : entry.path).utf8)
        let headerOffset = offset
        let size: UInt64 = if case .file(let length) = entry.kind { UInt64(length) } else { 0 }
        // Reserve a zip64 field when the sizes might not fit in 32 bits.
        let large = size >= 0xF000_0000
        let method: UInt16 = if case .file = entry.kind, size > 0 { 8 } else { 0 }
        let (date, time) = Self.dosDateTime(entry.modificationTime)
        let timestamp = Self.extendedTimestamp(entry.modificationTime)
        let localZip64: [UInt8] = large ? le16(0x0001) + le16(16) + [UInt8](repeating: 0, count: 16) : []
        var local = le32(0x0403_4B50) + le16(large ? 45 : 20) + le16(0x0800) + le16(method) + le16(time) + le16(date)
        local += le32(0) + le32(0) + le32(0) + le16(UInt16(name.count)) + le16(UInt16(timestamp.count + localZip64.count))
        local += name + timestamp + localZip64
        try write(local)

        var crc = CRC32()
        var compressed: UInt64 = 0
        var uncompressed: UInt64 = 0
        switch entry.kind {
        case .file where method == 8:
            guard let input = OpenFile(forReadingAtPath: root + "/" + entry.path) else {
                throw AutoupdateError.unreadable(root + "/" + entry.path)
            }
            defer { try? input.close() }
            deflater.reset()
            let sink: (UnsafeRawBufferPointer) throws -> Void = { piece in
                try self.write(Array(piece))
                compressed += UInt64(piece.count)
            }
            while let data = try input.read(upToCount: 1 << 20), !data.isEmpty {
                try data.withUnsafeBytes { bytes in
                    crc.update(bytes)
                    uncompressed += UInt64(bytes.count)
                    try deflater.compress(bytes, output: sink)
                }
            }
            try deflater.finish(output: sink)
            guard uncompressed == size else {
                throw AutoupdateError.changedWhilePublished(entry.path)
            }
        case .symlink(let target):
            let bytes = Array(target.utf8)
            bytes.withUnsafeBytes { crc.update($0) }
            try write(bytes)
            (compressed, uncompressed) = (UInt64(bytes.count), UInt64(bytes.count))
        default:
            break
        }

        // Patch the local header's CRC and sizes (and its zip64 field).
        let endOffset = offset
        try handle.seek(toOffset: headerOffset + 14)
        let sizes = large ? le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF) : le32(UInt32(compressed)) + le32(UInt32(uncompressed))
        try handle.write(contentsOf: le32(crc.value) + sizes)
        if large {
            try handle.seek(toOffset: headerOffset + 30 + UInt64(name.count + timestamp.count) + 4)
            try handle.write(contentsOf: le64(uncompressed) + le64(compressed))
        }
        try handle.seek(toOffset: endOffset)

        let fileType: UInt32 =
            switch entry.kind {
            case .file: 0o100000
            case .directory: 0o040000
            case .symlink: 0o120000
            }
        var zip64: [UInt8] = []
        if uncompressed >= 0xFFFF_FFFF { zip64 += le64(uncompressed) }
        if compressed >= 0xFFFF_FFFF { zip64 += le64(compressed) }
        if headerOffset >= 0xFFFF_FFFF { zip64 += le64(headerOffset) }
        let centralExtra = timestamp + (zip64.isEmpty ? [] : le16(0x0001) + le16(UInt16(zip64.count)) + zip64)
        needsZip64 = needsZip64 || !zip64.isEmpty
        central += le32(0x0201_4B50) + le16(0x031E) + le16(zip64.isEmpty ? 20 : 45) + le16(0x0800) + le16(method)
        central += le16(time) + le16(date) + le32(crc.value)
        central += le32(UInt32(min(compressed, 0xFFFF_FFFF))) + le32(UInt32(min(uncompressed, 0xFFFF_FFFF)))
        central += le16(UInt16(name.count)) + le16(UInt16(centralExtra.count)) + le16(0) + le16(0) + le16(0)
        central += le32((fileType | entry.mode) << 16) + le32(UInt32(min(headerOffset, 0xFFFF_FFFF))) + name + centralExtra
        count += 1
        return (Int64(headerOffset), Int64(endOffset - headerOffset))
    }

    func finish() throws {
        let directoryOffset = offset
        try write(central)
        let directorySize = UInt64(central.count)
        if needsZip64 || count >= 0xFFFF || directoryOffset >= 0xFFFF_FFFF {
            let recordOffset = offset
            try write(
                le32(0x0606_4B50) + le64(44) + le16(0x031E) + le16(45) + le32(0) + le32(0)
                    + le64(UInt64(count)) + le64(UInt64(count)) + le64(directorySize) + le64(directoryOffset))
            try write(le32(0x0706_4B50) + le32(0) + le64(recordOffset) + le32(1))
        }
        let entries = UInt16(min(count, 0xFFFF))
        try write(
            le32(0x0605_4B50) + le16(0) + le16(0) + le16(entries) + le16(entries)
                + le32(UInt32(min(directorySize, 0xFFFF_FFFF))) + le32(UInt32(min(directoryOffset, 0xFFFF_FFFF))) + le16(0))
    }

    private func write(_ bytes: [UInt8]) throws {
        try handle.write(contentsOf: bytes)
        offset += UInt64(bytes.count)
    }

    /// The "extended timestamp" field (0x5455) with the modification time.
    private static func extendedTimestamp(_ time: Int64) -> [UInt8] {
        [0x55, 0x54, 5, 0, 1] + (0..<4).map { UInt8(truncatingIfNeeded: Int32(clamping: time) >> (8 * $0)) }
    }

    /// MS-DOS date and time fields, in UTC.
    private static func dosDateTime(_ time: Int64) -> (date: UInt16, time: UInt16) {
        var seconds = time_t(max(time, 315_532_800))  // not before 1980
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let date = UInt16((Int(parts.tm_year) - 80) << 9 | (Int(parts.tm_mon) + 1) << 5 | Int(parts.tm_mday))
        let clock = UInt16(Int(parts.tm_hour) << 11 | Int(parts.tm_min) << 5 | Int(parts.tm_sec) / 2)
        return (date, clock)
    }
}

@available(*, unavailable)
extension ZipWriter: Sendable {}

private func le16(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8)] }
private func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(value >> (8 * $0) & 0xFF) } }
private func le64(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(value >> (8 * UInt64($0)) & 0xFF) } }

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Writes a POSIX tar stream (ustar headers; pax records for names, link targets or sizes that
/// ustar cannot hold), ending with the two zero blocks.
struct TarWriter {
    let output: (UnsafeRawBufferPointer) throws -> Void

    func write(_ entry: SourceTree.Entry, root: String) throws {
        let name = entry.kind == .directory ? entry.path + "/" : entry.path
        var pax: [(String, String)] = []
        var size: Int64 = 0
        var linkTarget = ""
        let type: UInt8
        switch entry.kind {
        case .file(let length):
            type = UInt8(ascii: "0")
            size = length
        case .directory:
            type = UInt8(ascii: "5")
        case .symlink(let target):
            type = UInt8(ascii: "2")
            linkTarget = target
        }
        let split = Self.ustarSplit(name)
        if split == nil { pax.append(("path", name)) }
        if linkTarget.utf8.count > 100 { pax.append(("linkpath", linkTarget)) }
        if size >= 0o77777777777 { pax.append(("size", String(size))) }
        if !pax.isEmpty {
            let records = Array(pax.map { Self.paxRecord($0.0, $0.1) }.joined().utf8)
            try emit(
                header(
                    name: "PaxHeaders/" + String(entry.path.suffix(80)), prefix: "", type: UInt8(ascii: "x"),
                    size: Int64(records.count), mode: 0o644, time: entry.modificationTime, link: ""))
            try emitPadded(records)
        }
        // When ustar cannot hold the name, the pax record above carries it; the header keeps its tail.
        let (prefix, short) = split ?? ("", String(decoding: Array(name.utf8.suffix(99)), as: UTF8.self))
        try emit(
            header(
                name: short, prefix: prefix, type: type, size: size >= 0o77777777777 ? 0 : size,
                mode: entry.mode, time: entry.modificationTime, link: String(decoding: linkTarget.utf8.prefix(100), as: UTF8.self)))
        if case .file(let length) = entry.kind, length > 0 {
            try copyFile(root + "/" + entry.path, expected: length)
        }
    }

    func finish() throws {
        try emit([UInt8](repeating: 0, count: 1024))
    }

    private func copyFile(_ path: String, expected: Int64) throws {
        guard let handle = OpenFile(forReadingAtPath: path) else {
            throw AutoupdateError.unreadable(path)
        }
        defer { try? handle.close() }
        var written: Int64 = 0
        while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty {
            guard written + Int64(data.count) <= expected else {
                throw AutoupdateError(.fileSystem, "\(quoted(path)) grew while it was being published")
            }
            try data.withUnsafeBytes { try output($0) }
            written += Int64(data.count)
        }
        guard written == expected else {
            throw AutoupdateError.changedWhilePublished(path)
        }
        try emit([UInt8](repeating: 0, count: Int((512 - written % 512) % 512)))
    }

    private func emit(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try output($0) }
    }

    private func emitPadded(_ bytes: [UInt8]) throws {
        try emit(bytes + [UInt8](repeating: 0, count: (512 - bytes.count % 512) % 512))
    }

    /// Splits a name into ustar's prefix (155 bytes) and name (100 bytes) at a `/`, or `nil`.
    static func ustarSplit(_ name: String) -> (prefix: String, name: String)? {
        let bytes = Array(name.utf8)
        if bytes.count <= 100 {
            return ("", name)
        }
        for index in bytes.indices.reversed() where bytes[index] == UInt8(ascii: "/") {
            let prefix = bytes[..<index]
            let rest = bytes[(index + 1)...]
            if prefix.count <= 155, rest.count <= 100, !rest.isEmpty {
                return (String(decoding: prefix, as: UTF8.self), String(decoding: rest, as: UTF8.self))
            }
        }
        return nil
    }

    /// `"<length> key=value\n"`, where length counts the whole record, its own digits included.
    static func paxRecord(_ key: String, _ value: String) -> String {
        let body = " \(key)=\(value)\n"
        var length = body.utf8.count + 1
        while String(length).count + body.utf8.count != length {
            length = String(length).count + body.utf8.count
        }
        return String(length) + body
    }

    private func header(name: String, prefix: String, type: UInt8, size: Int64, mode: UInt32, time: Int64, link: String) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, _ field: TarField) {
            for (index, byte) in text.utf8.prefix(field.length).enumerated() { block[field.offset + index] = byte }
        }
        /// Zero-padded octal, leaving the field's last byte as it is (a NUL).
        func octal(_ value: Int64, _ field: TarField) {
            let digits = String(value, radix: 8)
            let width = field.length - 1
            put(
                String(repeating: "0", count: max(0, width - digits.count)) + digits,
                TarField(offset: field.offset, length: width, name: field.name))
        }
        put(name, .name)
        octal(Int64(mode), .mode)
        octal(0, .userID)
        octal(0, .groupID)
        octal(size, .size)
        octal(max(0, time), .modificationTime)
        block[TarField.typeFlag.offset] = type
        put(link, .linkName)
        put("ustar", .magic)
        put("00", .version)
        put(prefix, .prefix)
        // The checksum counts its own field as spaces; six digits go in, two spaces stay.
        for index in TarField.checksum.range { block[index] = 0x20 }
        let sum = block.reduce(0) { $0 + Int64($1) }
        octal(sum, TarField(offset: TarField.checksum.offset, length: 7, name: "checksum"))
        return block
    }
}

/// Everything a zip entry's data is checked against, in one value that both of ``ZipReader``'s
/// paths feed (streamed, and spooled from the central directory): a running CRC-32, the bytes
/// read and produced, the declared CRC and sizes, the data descriptor, and in the end the
/// central directory's record.
struct ZipEntryVerifier {
    /// What the headers promise for the entry.
    struct Declared: Equatable {
        var crc: UInt32
        var compressedSize: Int64
        var uncompressedSize: Int64
    }

    /// What was read, once the entry is verified: the central directory is checked against it.
    struct Summary: Equatable {
        let name: String
        let offset: Int64
        let method: UInt16
        let crc: UInt32
        let compressedSize: Int64
        let uncompressedSize: Int64
    }

    let name: String
    /// The local header's offset.
    let offset: Int64
    let method: UInt16
    /// `nil` while only a data descriptor after the data will tell (a streamed entry with flag bit 3).
    let declared: Declared?
    private var crc = CRC32()
    /// Entry bytes produced (after inflating).
    private(set) var produced: Int64 = 0
    /// Archive bytes consumed (before inflating).
    private(set) var consumed: Int64 = 0

    init(name: String, offset: Int64, method: UInt16, declared: Declared?) {
        self.name = name
        self.offset = offset
        self.method = method
        self.declared = declared
    }

    /// Compressed bytes left to read, when they are known.
    var remaining: Int64? {
        declared.map { $0.compressedSize - consumed }
    }

    mutating func consumed(_ count: Int) {
        consumed += Int64(count)
    }

    /// Counts and checksums produced bytes; refuses them past the declared size at once.
    mutating func produced(_ bytes: UnsafeRawBufferPointer) throws {
        produced += Int64(bytes.count)
        if let declared, produced > declared.uncompressedSize {
            throw AutoupdateError(
                .sizeLimitExceeded, "zip entry \(quoted(name)) inflates past its declared size of \(declared.uncompressedSize) bytes")
        }
        crc.update(bytes)
    }

    /// The data has ended: the CRC and size must be the declared ones.
    func verifyData() throws {
        guard let declared else { return }
        guard crc.value == declared.crc else {
            throw AutoupdateError(.checksumMismatch, "zip entry \(quoted(name)) is corrupt: CRC-32 mismatch")
        }
        guard produced == declared.uncompressedSize else {
            throw AutoupdateError(
                .corruptArchive, "zip entry \(quoted(name)) has \(produced) bytes, not its declared \(declared.uncompressedSize)")
        }
    }

    /// The data descriptor after the data must agree with it (streamed), or with the central
    /// directory's values the data was already checked against (spooled).
    func verify(descriptor: Declared) throws {
        if let declared {
            guard descriptor == declared else {
                throw AutoupdateError(
                    .corruptArchive, "the data descriptor of zip entry \(quoted(name)) disagrees with the central directory")
            }
            return
        }
        guard descriptor.crc == crc.value else {
            throw AutoupdateError(.checksumMismatch, "zip entry \(quoted(name)) is corrupt: CRC-32 mismatch (data descriptor)")
        }
        guard descriptor.compressedSize == consumed, descriptor.uncompressedSize == produced else {
            throw AutoupdateError(
                .corruptArchive,
                "the data descriptor of zip entry \(quoted(name)) disagrees with its data (sizes \(descriptor.compressedSize)/\(descriptor.uncompressedSize), read \(consumed)/\(produced))"
            )
        }
    }

    /// What was read: the central directory must list exactly this.
    var summary: Summary {
        Summary(name: name, offset: offset, method: method, crc: crc.value, compressedSize: consumed, uncompressedSize: produced)
    }

    /// What the local header declares, for an entry handed on deflated (``ZipDeflatedEntry``):
    /// its inflation is checked against the same values where it runs, so the central directory
    /// may be checked against them now.
    var declaredSummary: Summary? {
        declared.map {
            Summary(name: name, offset: offset, method: method, crc: $0.crc, compressedSize: $0.compressedSize, uncompressedSize: $0.uncompressedSize)
        }
    }

    /// The central directory's record must agree with what was read.
    static func verify(_ record: ZipCentralRecord, number: Int, against entry: Summary) throws {
        guard record.name == entry.name else {
            throw AutoupdateError.zipNamesDisagree(entry: number, local: entry.name, central: record.name)
        }
        guard record.localHeaderOffset == entry.offset, record.method == entry.method, record.crc == entry.crc,
            record.compressedSize == entry.compressedSize, record.uncompressedSize == entry.uncompressedSize
        else {
            throw AutoupdateError(
                .corruptArchive, "the zip central directory disagrees with local entry \(quoted(entry.name)) (offset, method, CRC or sizes)"
            )
        }
    }
}

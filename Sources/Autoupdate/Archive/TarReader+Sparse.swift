/// GNU sparse files: a file mostly of holes is stored as its data regions and a map saying where
/// they go. Three encodings exist: the old GNU `S` header (four regions in the header, more in
/// extension blocks after it), pax 0.0 and 0.1 (the map in pax records) and pax 1.0 (the map in
/// decimal lines at the start of the data). All are read into one ``SparseCursor``, which hands
/// the data on with ``ArchiveEvent/hole(_:)`` events between the regions, so that the file is
/// written with holes and its size is the real size; the byte caps count the real size.
///
/// Maps are checked as Go and bsdtar check them: regions in order, not overlapping, inside the
/// real size, and holding exactly the stored bytes. Maps are bounded (``maxSegments``).

/// One region of a sparse file that holds data; what lies between regions is a hole.
struct SparseSegment: Equatable {
    let offset: Int64
    let length: Int64
}

extension TarReader {
    /// The most regions a sparse file's map may have (16 bytes of memory each).
    static let maxSparseSegments = 1 << 20
}

/// Lays a sparse file's stored data out along its map.
struct SparseCursor {
    private let segments: [SparseSegment]
    private let realSize: Int64
    private var index = 0
    private var inSegment = false
    private var leftInSegment: Int64 = 0
    /// The offset in the real file the next byte goes to.
    private var position: Int64 = 0

    init(segments: [SparseSegment], realSize: Int64, stored: Int64, path: String, reader: inout TarReader) throws {
        var end: Int64 = 0
        var total: Int64 = 0
        for segment in segments {
            guard segment.offset >= 0, segment.length >= 0, segment.offset <= Int64.max - segment.length,
                segment.offset + segment.length <= realSize, segment.offset >= end
            else {
                throw reader.fail(
                    "the sparse map of entry \(quoted(path)) has a region out of order, overlapping or past the file's size of \(realSize) bytes"
                )
            }
            end = segment.offset + segment.length
            total += segment.length
        }
        guard realSize >= 0, total == stored else {
            throw reader.fail("the sparse map of entry \(quoted(path)) places \(total) bytes, but \(stored) are stored")
        }
        self.segments = segments.filter { $0.length > 0 }
        self.realSize = realSize
    }

    /// Every stored byte has been handed on.
    var isComplete: Bool { index == segments.count }

    /// Hands on stored bytes from `input` (a hole before each region); returns how many it took.
    mutating func feed(_ input: UnsafeRawBufferPointer, _ handle: (ArchiveEvent) throws -> Void) throws -> Int {
        var consumed = 0
        while consumed < input.count, !isComplete {
            if !inSegment {
                let segment = segments[index]
                if segment.offset > position {
                    try handle(.hole(segment.offset - position))
                    position = segment.offset
                }
                inSegment = true
                leftInSegment = segment.length
            }
            let taken = Int(min(leftInSegment, Int64(input.count - consumed)))
            try handle(.data(UnsafeRawBufferPointer(rebasing: input[consumed..<(consumed + taken)])))
            consumed += taken
            position += Int64(taken)
            leftInSegment -= Int64(taken)
            if leftInSegment == 0 {
                inSegment = false
                index += 1
            }
        }
        return consumed
    }

    /// The hole from the last region to the real size.
    mutating func finish(_ handle: (ArchiveEvent) throws -> Void) throws {
        if position < realSize {
            try handle(.hole(realSize - position))
            position = realSize
        }
    }
}

/// An old GNU sparse header (`S`) and its extension blocks.
struct OldGNUSparse {
    let path: String
    let mode: UInt32
    let modificationTime: Int64
    /// The bytes stored in the archive (the header's size field).
    let stored: Int64
    let realSize: Int64
    private(set) var segments: [SparseSegment] = []
    private(set) var hasMoreExtensions: Bool

    init(
        header: UnsafeRawBufferPointer, path: String, mode: UInt32, modificationTime: Int64, stored: Int64, reader: inout TarReader
    ) throws {
        self.path = path
        self.mode = mode
        self.modificationTime = modificationTime
        self.stored = stored
        let at = reader.offset - 512
        realSize = try TarReader.number(header, .sparseRealSize, at: at)
        // Four regions of 24 bytes each (offset, length); a NUL ends the list early.
        try Self.read(header, regions: .sparseRegions, into: &segments, path: path, reader: &reader)
        hasMoreExtensions = header[TarField.sparseIsExtended.offset] != 0
    }

    /// Reads one extension block: 21 regions, then its own "more follow" flag at byte 504.
    mutating func readExtension(_ block: UnsafeRawBufferPointer, reader: inout TarReader) throws {
        try Self.read(block, regions: .extensionRegions, into: &segments, path: path, reader: &reader)
        hasMoreExtensions = block[TarField.extensionIsExtended.offset] != 0
    }

    private static func read(
        _ block: UnsafeRawBufferPointer, regions: TarField, into segments: inout [SparseSegment], path: String, reader: inout TarReader
    ) throws {
        for region in stride(from: regions.offset, to: regions.offset + regions.length, by: 24) {
            guard block[region] != 0 else { break }
            let offset = try TarReader.number(block, .sparseOffset(inRegionAt: region), at: reader.offset - 512)
            let length = try TarReader.number(block, .sparseLength(inRegionAt: region), at: reader.offset - 512)
            guard segments.count < TarReader.maxSparseSegments else {
                throw reader.fail(
                    "the sparse map of entry \(quoted(path)) has more than \(TarReader.maxSparseSegments) regions", code: .sizeLimitExceeded
                )
            }
            segments.append(SparseSegment(offset: offset, length: length))
        }
    }
}

/// A GNU sparse file described by pax records (0.0, 0.1 or 1.0).
struct PaxSparse {
    enum Map {
        /// 0.0 and 0.1: the map is in the records.
        case known([SparseSegment])
        /// 1.0: the map is at the start of the data.
        case inData
    }

    let name: String
    let realSize: Int64
    let map: Map

    /// The sparse file `pax` describes, or `nil` when it describes none.
    init?(_ pax: PaxRecords, path: String, stored: Int64, reader: inout TarReader) throws {
        let major = pax.text("GNU.sparse.major")
        let minor = pax.text("GNU.sparse.minor")
        let isVersion1: Bool
        switch (major, minor) {
        case ("0"?, "0"?), ("0"?, "1"?): isVersion1 = false
        case ("1"?, "0"?): isVersion1 = true
        case (nil, nil):
            // 0.0 and 0.1 wrote no version records.
            guard pax.value("GNU.sparse.map") != nil || pax.value("GNU.sparse.offset") != nil else { return nil }
            isVersion1 = false
        default:
            throw reader.fail(
                "entry \(quoted(path)) is a GNU sparse file of version \(major ?? "?").\(minor ?? "?"), which is not supported",
                code: .unsupportedArchive)
        }
        name = try pax.name("GNU.sparse.name") ?? path
        guard let sizeText = pax.text("GNU.sparse.size") ?? pax.text("GNU.sparse.realsize"), let size = Int64(sizeText), size >= 0 else {
            throw reader.fail("the sparse file \(quoted(name)) gives no valid real size")
        }
        realSize = size
        if isVersion1 {
            map = .inData
            return
        }
        var numbers: [Int64] = []
        if let text = pax.text("GNU.sparse.map") {
            // 0.1: "offset,length,offset,length…"
            if !text.isEmpty {
                for field in text.split(separator: ",", omittingEmptySubsequences: false) {
                    guard let number = Int64(field) else {
                        throw reader.fail("the sparse map of entry \(quoted(name)) holds \(quoted(field)), not a number")
                    }
                    numbers.append(number)
                }
            }
        } else {
            // 0.0: GNU.sparse.offset and GNU.sparse.numbytes records, alternating.
            for (key, value) in pax.records where key == "GNU.sparse.offset" || key == "GNU.sparse.numbytes" {
                let expected = numbers.count % 2 == 0 ? "GNU.sparse.offset" : "GNU.sparse.numbytes"
                guard key == expected, let number = Int64(String(decoding: value, as: UTF8.self)) else {
                    throw reader.fail("the sparse map of entry \(quoted(name)) has its records out of order or malformed")
                }
                numbers.append(number)
            }
        }
        guard let countText = pax.text("GNU.sparse.numblocks"), let count = Int(countText), count >= 0,
            count <= TarReader.maxSparseSegments, numbers.count == 2 * count
        else {
            throw reader.fail("the sparse map of entry \(quoted(name)) does not hold the number of regions it announces")
        }
        map = .known(stride(from: 0, to: numbers.count, by: 2).map { SparseSegment(offset: numbers[$0], length: numbers[$0 + 1]) })
    }
}

/// A GNU sparse 1.0 map, read from the start of the data: decimal numbers, one per line (the
/// number of regions, then each region's offset and length), padded to a 512-byte block.
/// Parsed as it arrives, so a map of a million regions costs one pass.
struct SparsePending {
    let path: String
    let realSize: Int64
    /// Bytes of the map region taken so far.
    private var count = 0
    /// The digits of the line being read.
    private var line: [UInt8] = []
    /// How many numbers the map holds after its first line (two per region).
    private var wanted: Int?
    private var numbers: [Int64] = []

    /// The map region may not exceed this (a region takes at most 40 bytes).
    static let maxBytes = 40 * TarReader.maxSparseSegments
    /// A line longer than this holds no 64-bit number.
    private static let maxLine = 32

    init(path: String, realSize: Int64) {
        self.path = path
        self.realSize = realSize
    }

    /// Bytes still to take before the current block is whole.
    var roomInBlock: Int { TarReader.blockSize - count % TarReader.blockSize }

    private var isMapComplete: Bool { wanted == numbers.count }

    /// Takes the next bytes of the map region (at most ``roomInBlock``); at the end of the block
    /// in which the map ends (the rest of it is padding), returns the map.
    mutating func take(_ piece: UnsafeRawBufferPointer, storedAfter: Int64, reader: inout TarReader) throws -> SparseCursor? {
        count += piece.count
        guard count <= Self.maxBytes else {
            throw reader.fail("the sparse map of entry \(quoted(path)) is larger than \(Self.maxBytes) bytes", code: .sizeLimitExceeded)
        }
        for byte in piece where !isMapComplete {
            if byte == UInt8(ascii: "\n") {
                try endLine(reader: &reader)
            } else {
                line.append(byte)
                guard line.count <= Self.maxLine else {
                    throw reader.fail("the sparse map of entry \(quoted(path)) holds a line that is not a number")
                }
            }
        }
        guard isMapComplete, count % TarReader.blockSize == 0 else { return nil }
        let segments = stride(from: 0, to: numbers.count, by: 2).map { SparseSegment(offset: numbers[$0], length: numbers[$0 + 1]) }
        return try SparseCursor(segments: segments, realSize: realSize, stored: storedAfter, path: path, reader: &reader)
    }

    private mutating func endLine(reader: inout TarReader) throws {
        defer { line.removeAll(keepingCapacity: true) }
        guard let number = Int64(String(decoding: line, as: UTF8.self)), number >= 0 else {
            throw reader.fail("the sparse map of entry \(quoted(path)) holds a line that is not a number")
        }
        guard wanted != nil else {
            guard number <= Int64(TarReader.maxSparseSegments) else {
                throw reader.fail(
                    "the sparse map of entry \(quoted(path)) has more than \(TarReader.maxSparseSegments) regions", code: .sizeLimitExceeded
                )
            }
            wanted = Int(number) * 2
            return
        }
        numbers.append(number)
    }
}

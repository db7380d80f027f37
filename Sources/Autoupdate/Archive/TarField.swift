/// Where a field of a 512-byte tar block lives, by name: POSIX ustar's header, and the GNU
/// extensions the reader understands (old-style sparse maps).
///
/// - SeeAlso: POSIX.1-2017 `pax`, "ustar Interchange Format"; GNU tar's manual, "Tar Internals".
struct TarField {
    let offset: Int
    let length: Int
    /// For messages ("the size of the entry at byte …").
    let name: String

    var range: Range<Int> { offset..<(offset + length) }

    // ustar
    static let name = TarField(offset: 0, length: 100, name: "name")
    static let mode = TarField(offset: 100, length: 8, name: "mode")
    static let userID = TarField(offset: 108, length: 8, name: "uid")
    static let groupID = TarField(offset: 116, length: 8, name: "gid")
    static let size = TarField(offset: 124, length: 12, name: "size")
    static let modificationTime = TarField(offset: 136, length: 12, name: "mtime")
    static let checksum = TarField(offset: 148, length: 8, name: "checksum")
    static let typeFlag = TarField(offset: 156, length: 1, name: "type")
    static let linkName = TarField(offset: 157, length: 100, name: "link name")
    /// "ustar" and a NUL in POSIX archives ("ustar  " and a NUL in old GNU ones).
    static let magic = TarField(offset: 257, length: 6, name: "magic")
    static let version = TarField(offset: 263, length: 2, name: "version")
    static let prefix = TarField(offset: 345, length: 155, name: "prefix")

    // Old GNU sparse files (type 'S')
    /// Four regions of 24 bytes (offset, length) in the header.
    static let sparseRegions = TarField(offset: 386, length: 4 * 24, name: "sparse map")
    /// Non-zero when extension blocks with more regions follow.
    static let sparseIsExtended = TarField(offset: 482, length: 1, name: "sparse extension flag")
    static let sparseRealSize = TarField(offset: 483, length: 12, name: "sparse real size")
    /// In an extension block: 21 regions, then its own flag.
    static let extensionRegions = TarField(offset: 0, length: 21 * 24, name: "sparse map")
    static let extensionIsExtended = TarField(offset: 504, length: 1, name: "sparse extension flag")

    /// A region of a sparse map: its offset and length fields, 12 bytes each.
    static func sparseOffset(inRegionAt start: Int) -> TarField {
        TarField(offset: start, length: 12, name: "sparse offset")
    }

    static func sparseLength(inRegionAt start: Int) -> TarField {
        TarField(offset: start + 12, length: 12, name: "sparse length")
    }
}

extension UnsafeRawBufferPointer {
    /// The field's bytes.
    subscript(field: TarField) -> Slice<UnsafeRawBufferPointer> {
        self[field.range]
    }
}

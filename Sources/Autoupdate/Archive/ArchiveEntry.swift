/// One member of an archive, as its reader decoded it; not yet judged by the safety policy.
struct ArchiveEntry: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        case file
        case directory
        case symlink(target: String)
        /// A hard link to an earlier entry of the archive.
        case hardlink(target: String)
    }

    /// The name exactly as the archive gives it (UTF-8), before any normalization.
    var path: String
    var kind: Kind
    /// Permission bits as stored, setuid/setgid/sticky included (the policy strips them);
    /// `nil` when the archive does not say yet (a zip's modes arrive with its central directory).
    var mode: UInt32?
    /// The declared size of the entry's data: a regular file gets exactly this many bytes.
    /// `nil` when the archive declares it only after the data (a zip data descriptor).
    var size: Int64?
    /// Seconds since 1970, when the archive records it.
    var modificationTime: Int64?
}

/// What an archive reader hands its consumer, in order: an entry, its data in pieces, its end.
enum ArchiveEvent {
    case entry(ArchiveEntry)
    /// The next bytes of the current entry's content.
    ///
    /// - Important: Valid only during the call that delivers it.
    case data(UnsafeRawBufferPointer)
    /// The next bytes of the current entry's content are this many zeros, which the file should
    /// get as a hole (a sparse file's unstored regions).
    case hole(Int64)
    /// The current entry's whole content, still deflated, for the consumer to inflate where it
    /// likes (on another core): a zip entry whose sizes its local header declares, when the
    /// reader was asked to hand such entries on (``ZipReader/init(makeSpool:handsOnDeflatedUpTo:)``).
    /// It comes instead of `data`, before `entryEnd`.
    case deflated(ZipDeflatedEntry)
    case entryEnd
}

/// Decodes an entry name or link target: UTF-8 only, no NUL.
///
/// Tar names are raw bytes (Latin-1 in old archives, anything under pax `hdrcharset=BINARY`).
/// They are refused rather than guessed or written raw: an install records every path it puts
/// in place in `filelist.txt`, UTF-8 text, one per line, and a later update moves, restores or
/// deletes exactly what that list names; a name it cannot write there is one it could not
/// manage. (Zip names that are not UTF-8 are CP437 by the format's definition, and read so.)
func decodeName(_ bytes: some Collection<UInt8>, what: String) throws -> String {
    guard !bytes.contains(0) else {
        throw AutoupdateError.nulByte(in: what)
    }
    guard let name = String(validating: bytes, as: UTF8.self) else {
        throw AutoupdateError(
            .unsupportedArchive,
            "\(what) is not UTF-8 (bytes \(hex(bytes.prefix(32)))): names must be UTF-8 text, as filelist.txt records installed files, so other encodings are refused rather than guessed"
        )
    }
    return name
}

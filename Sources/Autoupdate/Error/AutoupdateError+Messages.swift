import SystemPackage

/// The messages that more than one place raises, each written once: a factory per failure,
/// named for what went wrong, taking what the message names.
extension AutoupdateError {
    // MARK: Files and folders

    /// A file or folder operation failed: "cannot <action> '<path>' (<errno>)".
    static func fileSystem(_ action: String, _ path: String, _ errno: Errno) -> AutoupdateError {
        AutoupdateError(.fileSystem, "cannot \(action) \(quoted(path)) (\(errno))", underlying: errno)
    }

    /// A file could not be read (its reason unknown to the caller: a handle that did not open).
    static func unreadable(_ path: String) -> AutoupdateError {
        AutoupdateError(.fileSystem, "cannot read \(quoted(path))")
    }

    /// A source file's size changed between its listing and its archiving.
    static func changedWhilePublished(_ path: String) -> AutoupdateError {
        AutoupdateError(.fileSystem, "\(quoted(path)) changed size while it was being published")
    }

    /// Writing an extracted entry failed: "extracting '<entry>': <what> (<errno>)".
    static func extraction(_ entry: String, _ what: String, _ errno: Errno) -> AutoupdateError {
        AutoupdateError(.fileSystem, "extracting \(quoted(entry)): \(what) (\(errno))", underlying: errno)
    }

    // MARK: Archives

    /// An entry would replace something the extraction did not create.
    static func alreadyInDestination(_ path: String) -> AutoupdateError {
        AutoupdateError(
            .unsafeEntry, "the destination already contains \(quoted(path)); extraction never overwrites what it did not create")
    }

    static func symlinkCollides(_ entry: String) -> AutoupdateError {
        AutoupdateError(.unsafeEntry, "symlink \(quoted(entry)) collides with an earlier entry of the same name")
    }

    /// A name (of an entry, of a link target) holds a NUL byte.
    static func nulByte(in what: String) -> AutoupdateError {
        AutoupdateError(.corruptArchive, "\(what) contains a NUL byte")
    }

    static func zipSpansDisks() -> AutoupdateError {
        AutoupdateError(.unsupportedArchive, "the zip archive spans several disks, which is not supported")
    }

    static func zipNamesDisagree(entry number: Int, local: String, central: String) -> AutoupdateError {
        AutoupdateError(
            .unsafeEntry,
            "zip entry \(number) is named \(quoted(local)) in its local header but \(quoted(central)) in the central directory")
    }

    static func zipDeflateIncomplete(_ entry: String) -> AutoupdateError {
        AutoupdateError(.corruptArchive, "the deflate data of zip entry \(quoted(entry)) is incomplete")
    }

    static func zipDirectoryMisplaced() -> AutoupdateError {
        AutoupdateError(.corruptArchive, "the zip end record places the central directory where it is not")
    }

    static func tarNumberOutOfRange(_ field: String, at offset: Int64) -> AutoupdateError {
        AutoupdateError(.corruptArchive, "tar header at byte \(offset) has an out-of-range \(field)")
    }

    static func bzip2BadMagic(_ head: some Sequence<UInt8>) -> AutoupdateError {
        AutoupdateError(.corruptArchive, "not a bzip2 stream: bad magic bytes \(hex(head)) (expected 'BZh1'…'BZh9')")
    }

    static func bzip2TrailingData(at offset: Int64) -> AutoupdateError {
        AutoupdateError(.corruptArchive, "unexpected data after the bzip2 stream at byte \(offset)")
    }

    static func bzip2Truncated(stream: Int, at offset: Int64) -> AutoupdateError {
        AutoupdateError(.corruptArchive, "the bzip2 stream is truncated: stream \(stream) ends early, at byte \(offset)")
    }

    /// A block failed its CRC or did not decode (libbz2's `BZ_DATA_ERROR`).
    static func bzip2Corrupt(stream: Int, near offset: Int64, status: Bzip2Status?) -> AutoupdateError {
        AutoupdateError(
            .checksumMismatch, "bzip2 stream \(stream) is corrupt near byte \(offset) (a CRC mismatch or a damaged block)",
            underlying: status)
    }

    // MARK: Signatures, URLs, processes

    static func signatureMismatch(keyID: String) -> AutoupdateError {
        AutoupdateError(.signature, "the signature by key \(keyID) does not match the file's bytes (altered, or signed over other bytes)")
    }

    static func invalidUpdateURL(_ shown: String) -> AutoupdateError {
        AutoupdateError(.invalidURL, "the update URL \(shown) is not a valid URL")
    }

    static func invalidPort(_ shown: String, port: String) -> AutoupdateError {
        AutoupdateError(.invalidURL, "the update URL \(shown) has the port \(port); a port is a number from 1 to 65535")
    }

    static func alreadyRunning(_ executable: String, pid: Int32) -> AutoupdateError {
        AutoupdateError(.processRunning, "\(quoted(executable)) is already running (pid \(pid))")
    }

    static func invalidEnvironment(_ name: String, _ why: String) -> AutoupdateError {
        AutoupdateError(.invalidArgument, "the environment variable \(name) is invalid: \(why)")
    }
}

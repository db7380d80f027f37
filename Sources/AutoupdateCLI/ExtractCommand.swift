import ArgumentParser
import Autoupdate

struct ExtractCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Extract a .zip, .tar, .tar.gz or .tar.bz2 archive safely.",
        discussion: """
            The format comes from the file name (.zip, .tar, .tar.gz/.tgz, .tar.bz2/.tbz2), else \
            from the first bytes. Entries that would leave DEST (absolute paths, '..', escaping \
            links), devices, FIFOs and corrupt or truncated data fail the whole archive with a \
            message naming the entry; whatever the extraction created (parent folders included) \
            is then removed, and nothing that was in DEST before is ever overwritten.

            Names must be UTF-8 text without control characters: an update records every path \
            it installs in filelist.txt, one per line, and later moves or deletes exactly what \
            that list names, so a tar name in another encoding (old Latin-1 tars, pax \
            hdrcharset=BINARY) or holding a newline is refused, not guessed. Zip names that are \
            not UTF-8 are CP437, as the zip format defines. GNU sparse files extract with their \
            holes; --max-bytes counts their full size.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The archive to extract.")
    var archive: String

    @Argument(help: "The folder to extract into (created if missing).")
    var destination: String

    @Option(help: "The most bytes the extracted files may hold in all (sparse files at their full size).")
    var maxBytes: Int64 = ExtractionConfiguration().maxBytes

    @Option(help: "The most entries the archive may have.")
    var maxEntries: Int = ExtractionConfiguration().maxEntries

    func validate() throws {
        guard maxBytes > 0 else { throw ValidationError("--max-bytes must be positive") }
        guard maxEntries > 0 else { throw ValidationError("--max-entries must be positive") }
    }

    func run() async throws {
        global.bootstrapLogging()
        try await Failure.reporting {
            let extractor = Extractor(configuration: ExtractionConfiguration(maxBytes: maxBytes, maxEntries: maxEntries))
            let report = try await extractor.extract(file: archive, to: destination)
            let counts = [
                count(report.files, "file"), count(report.directories, "folder"),
                count(report.symlinks, "symlink"), count(report.hardlinks, "hard link"),
            ]
            print("extracted \(counts.joined(separator: ", ")) (\(count(Int(report.bytes), "byte"))) into \(destination)")
        }
    }
}

/// "1 file", "2 files".
func count(_ number: Int, _ noun: String, plural: String? = nil) -> String {
    "\(number) \(number == 1 ? noun : plural ?? noun + "s")"
}

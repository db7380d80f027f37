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

/// Limits and choices for an extraction.
public struct ExtractionConfiguration: Sendable, Hashable {
    /// The most bytes the extracted files may hold in all (a compression bomb stops here).
    public var maxBytes: Int64
    /// The most entries (files, folders, links) an archive may have.
    public var maxEntries: Int
    /// Whether each file starts its way to the disk as soon as it is complete, for a caller that
    /// syncs the tree afterwards (an install does): the disk then works while later entries are
    /// decoded, and the sync has less left to wait for. Without a sync it only adds disk work.
    public var startsWriteBack: Bool

    /// - Parameters:
    ///   - maxBytes: Default 8 GiB.
    ///   - maxEntries: Default 200 000.
    ///   - startsWriteBack: Default `false`.
    public init(maxBytes: Int64 = 8 << 30, maxEntries: Int = 200_000, startsWriteBack: Bool = false) {
        self.maxBytes = maxBytes
        self.maxEntries = maxEntries
        self.startsWriteBack = startsWriteBack
    }
}

/// What an extraction produced.
public struct ExtractionReport: Sendable, Hashable {
    /// Entries read, of every kind.
    public internal(set) var entries = 0
    public internal(set) var files = 0
    public internal(set) var directories = 0
    public internal(set) var symlinks = 0
    public internal(set) var hardlinks = 0
    /// Bytes written to files.
    public internal(set) var bytes: Int64 = 0
}

/// One extraction on the worker thread: decoder → archive reader → safety policy → writer.
///
/// Symlinks are created last, once every file is written: no later entry can write through one,
/// and each target is checked against every symlink of the archive (see ``ExtractionPolicy``).
/// Folder modes are applied last too, deepest first.
final class ExtractionSession {
    private struct OpenFile {
        let descriptor: Int32
        let entry: String
        let declaredSize: Int64?
        var written: Int64 = 0
        let mode: UInt32?
        let modificationTime: Int64?
        /// Handed to the inflating threads, which write, finish and close it.
        var handedOn = false

        var attributes: WriteBehind.FileAttributes {
            WriteBehind.FileAttributes(
                mode: ExtractionPolicy.permissions(mode, isDirectory: false), modificationTime: modificationTime, entry: entry)
        }
    }

    private struct PendingSymlink {
        let components: [String]
        let target: String
        let entry: String
    }

    private let format: ArchiveFormat
    private let configuration: ExtractionConfiguration
    private let decoder: any StreamDecoder
    private var tar: TarReader?
    private let zip: ZipReader?
    private let writer: TreeWriter
    private(set) var report = ExtractionReport()
    private var current: OpenFile?
    /// Writes and closes files while this thread goes on decoding: for zip, whose entries
    /// inflate on this thread. (gzip and bzip2 decode on threads of their own already; a third
    /// busy thread on two cores measured slower.)
    private let writeBehind: WriteBehind
    /// Inflates a zip's entries on every core (with more than one).
    private let inflation: InflatePool?
    private var pendingSymlinks: [PendingSymlink] = []
    private var symlinkPaths: Set<String> = []
    private var folderAttributes: [String: (mode: UInt32, modificationTime: Int64?)] = [:]
    /// Zip entries in order, to apply the central directory's modes and symlinks at the end.
    private var zipEntries: [(components: [String], entry: String, modificationTime: Int64?)] = []

    init(format: ArchiveFormat, destination: String, configuration: ExtractionConfiguration) throws {
        self.format = format
        self.configuration = configuration
        let writer = try TreeWriter(destination: destination)
        self.writer = writer
        let cores = ProcessInfo.processInfo.activeProcessorCount
        writeBehind = WriteBehind(threaded: format == .zip && cores > 1)
        decoder = try makeDecoder(for: format)
        if format == .zip {
            tar = nil
            inflation = cores > 1 ? InflatePool(threads: min(cores, 8)) : nil
            // The spool is an unnamed file in the destination: nothing is written anywhere else.
            zip = ZipReader(
                makeSpool: { try SpoolFile(in: writer.rootDescriptor) }, handsOnDeflatedUpTo: inflation == nil ? 0 : InflatePool.entryLimit)
        } else {
            inflation = nil
            tar = TarReader()
            zip = nil
        }
    }

    /// The next bytes of the archive, as they come.
    func consume(_ input: UnsafeRawBufferPointer) throws {
        do {
            try decoder.decode(input, output: read)
        } catch {
            throw earliestFailure(error)
        }
    }

    /// The failure to report for `error`: an entry before the one being read may still be
    /// inflating on another thread, and if it fails, its failure comes first (as it would if
    /// every entry inflated here).
    private func earliestFailure(_ error: any Error) -> any Error {
        guard let inflation else { return error }
        do {
            try inflation.drain()
        } catch let earlier {
            return earlier
        }
        return error
    }

    private func read(_ decoded: UnsafeRawBufferPointer) throws {
        if let zip {
            try zip.read(decoded, handle)
        } else {
            try tar?.read(decoded, handle)
        }
    }

    /// The archive has ended: checks its end, creates the symlinks, sets folder modes.
    func finish() throws -> ExtractionReport {
        do {
            try decoder.finish(output: read)
            if let zip {
                try zip.finish(handle)
            } else {
                try tar?.finish()
            }
        } catch {
            throw earliestFailure(error)
        }
        guard current == nil else {
            throw AutoupdateError(.corruptArchive, "the archive ends inside entry \(quoted(current?.entry ?? ""))")
        }
        // Every file is written and closed before the central directory's modes or anything else.
        try inflation?.drain()
        try writeBehind.drain()
        if let zip {
            try applyCentralDirectory(zip.centralRecords)
        }
        try createSymlinks()
        try writer.finishFolders(attributes: folderAttributes)
        return report
    }

    /// Removes everything the extraction created.
    func rollback() {
        // The queued writes and closes first: nothing may be removed while it is written.
        inflation?.stop()
        try? inflation?.drain()
        try? writeBehind.drain()
        if let current, !current.handedOn {
            close(current.descriptor)
            self.current = nil
        }
        writer.rollback()
    }

    // MARK: Events

    private func handle(_ event: ArchiveEvent) throws {
        switch event {
        case .entry(let entry):
            try begin(entry)
        case .data(let bytes):
            let file = try grow(by: Int64(bytes.count))
            try writeBehind.write(file.descriptor, bytes, entry: file.entry)
        case .hole(let count):
            // A hole counts as written: the caps bound what the file is, not what was stored.
            let file = try grow(by: count)
            try writeBehind.skip(file.descriptor, count, entry: file.entry)
        case .deflated(let data):
            guard let inflation else {
                throw AutoupdateError(.corruptArchive, "zip entry \(quoted(data.name)) was handed on deflated with nowhere to inflate it")
            }
            var file = try grow(by: data.uncompressedSize)
            file.handedOn = true
            current = file
            try inflation.submit(
                InflatePool.Job(
                    number: report.entries, descriptor: file.descriptor, data: data, attributes: file.attributes,
                    startsWriteBack: configuration.startsWriteBack))
        case .entryEnd:
            guard let file = current else { return }
            current = nil
            guard !file.handedOn else { return }
            if let declared = file.declaredSize, file.written != declared {
                try? writeBehind.close(file.descriptor, attributes: nil, startsWriteBack: false)
                throw AutoupdateError(
                    .corruptArchive, "entry \(quoted(file.entry)) holds \(file.written) bytes, not its declared \(declared)")
            }
            try writeBehind.close(file.descriptor, attributes: file.attributes, startsWriteBack: configuration.startsWriteBack)
        }
    }

    /// Counts `count` more bytes of the current file against the byte cap and its declared size.
    private func grow(by count: Int64) throws -> OpenFile {
        guard var file = current else {
            throw AutoupdateError(.corruptArchive, "the archive holds data for an entry that is not a file")
        }
        report.bytes += count
        guard report.bytes <= configuration.maxBytes else {
            throw AutoupdateError(
                .sizeLimitExceeded,
                "the archive expands to more than the limit of \(configuration.maxBytes) bytes (at entry \(quoted(file.entry)))")
        }
        file.written += count
        if let declared = file.declaredSize, file.written > declared {
            throw AutoupdateError(.corruptArchive, "entry \(quoted(file.entry)) holds more than its declared \(declared) bytes")
        }
        current = file
        return file
    }

    private func begin(_ entry: ArchiveEntry) throws {
        report.entries += 1
        guard report.entries <= configuration.maxEntries else {
            throw AutoupdateError(.sizeLimitExceeded, "the archive has more than the limit of \(configuration.maxEntries) entries")
        }
        let isZip = format == .zip
        let components = try ExtractionPolicy.components(of: entry.path, isZip: isZip)
        if isZip {
            zipEntries.append((components, entry.path, entry.modificationTime))
        }
        guard !components.isEmpty else {
            guard entry.kind == .directory else {
                throw AutoupdateError(.unsafeEntry, "entry \(quoted(entry.path)) names the destination itself")
            }
            return
        }
        let path = components.joined(separator: "/")
        // Nothing may be written through, or over, a symlink of this archive.
        // (A zip's symlinks are known only at its end: none yet while it streams.)
        for length in 1..<components.count where !symlinkPaths.isEmpty && symlinkPaths.contains(components[..<length].joined(separator: "/")) {
            throw AutoupdateError(
                .unsafeEntry,
                "entry \(quoted(entry.path)) would write through the symlink \(quoted(components[..<length].joined(separator: "/")))")
        }
        // A later tar member replaces an earlier one; a symlink may be replaced by a symlink only
        // (it is not created yet: nothing was written through it).
        let replacesSymlink: Bool
        if case .symlink = entry.kind, format != .zip { replacesSymlink = true } else { replacesSymlink = false }
        guard !symlinkPaths.contains(path) || replacesSymlink else {
            throw AutoupdateError(.unsafeEntry, "entry \(quoted(entry.path)) collides with an earlier symlink of the same name")
        }
        switch entry.kind {
        case .directory:
            try writer.makeDirectory(components, entry: entry.path)
            folderAttributes[path] = (ExtractionPolicy.permissions(entry.mode, isDirectory: true), entry.modificationTime)
            report.directories += 1
        case .file:
            if let size = entry.size, report.bytes + size > configuration.maxBytes {
                throw AutoupdateError(
                    .sizeLimitExceeded,
                    "entry \(quoted(entry.path)) of \(size) bytes would take the archive past the limit of \(configuration.maxBytes) bytes")
            }
            let descriptor = try writer.createFile(components, entry: entry.path, replacing: !isZip)
            current = OpenFile(
                descriptor: descriptor, entry: entry.path, declaredSize: entry.size, mode: entry.mode,
                modificationTime: entry.modificationTime)
            report.files += 1
        case .symlink(let target):
            try addSymlink(components, target: target, entry: entry.path)
        case .hardlink(let target):
            let targetComponents: [String]
            do {
                targetComponents = try ExtractionPolicy.components(of: target, isZip: false)
            } catch {
                throw AutoupdateError(.unsafeEntry, "hard link \(quoted(entry.path)) points to \(quoted(target)), outside the destination")
            }
            guard !targetComponents.isEmpty, !symlinkPaths.contains(targetComponents.joined(separator: "/")) else {
                throw AutoupdateError(
                    .unsafeEntry, "hard link \(quoted(entry.path)) points to \(quoted(target)), which is not a file of the archive")
            }
            try writer.link(components, to: targetComponents, entry: entry.path, replacing: true)
            report.hardlinks += 1
        }
    }

    private func addSymlink(_ components: [String], target: String, entry: String) throws {
        guard !target.isEmpty, target.utf8.count <= ExtractionPolicy.maxLinkTargetLength else {
            throw AutoupdateError(.unsafeEntry, "symlink \(quoted(entry)) has an empty or overlong target")
        }
        let path = components.joined(separator: "/")
        guard writer.nodes[path] == nil else {
            throw AutoupdateError.symlinkCollides(entry)
        }
        if !symlinkPaths.insert(path).inserted {
            // An earlier symlink of the same name (tar: the later member wins).
            pendingSymlinks.removeAll { $0.components == components }
            report.symlinks -= 1
        }
        pendingSymlinks.append(PendingSymlink(components: components, target: target, entry: entry))
        report.symlinks += 1
    }

    // MARK: The end

    /// Applies what only a zip's central directory says: Unix modes and which files are symlinks.
    private func applyCentralDirectory(_ records: [ZipCentralRecord]) throws {
        guard records.count == zipEntries.count else {
            throw AutoupdateError(.corruptArchive, "the zip central directory does not match the entries read")
        }
        for (record, entry) in Swift.zip(records, zipEntries) where !entry.components.isEmpty {
            guard let mode = record.unixMode else { continue }
            let path = entry.components.joined(separator: "/")
            switch mode & 0o170000 {
            case 0o120000:
                let target = try decodeName(
                    try writer.takeSmallFile(entry.components, limit: ExtractionPolicy.maxLinkTargetLength, entry: entry.entry),
                    what: "the target of symlink \(quoted(entry.entry))")
                report.files -= 1
                try addSymlink(entry.components, target: target, entry: entry.entry)
            case 0o040000:
                folderAttributes[path] = (mode & 0o777, entry.modificationTime)
            default:
                // Every file was closed with the default mode (a local header has none): most
                // central records agree, and opening each file again would cost its path walk.
                if mode & 0o777 != ExtractionPolicy.permissions(nil, isDirectory: false) {
                    try writer.setFileMode(entry.components, mode: mode & 0o777, entry: entry.entry)
                }
            }
        }
    }

    private func createSymlinks() throws {
        let targets = Dictionary(uniqueKeysWithValues: pendingSymlinks.map { ($0.components.joined(separator: "/"), $0.target) })
        for link in pendingSymlinks {
            guard
                ExtractionPolicy.symlinkStaysInside(
                    link: link.components, target: link.target, symlinks: targets, isForeignSymlink: writer.isForeignSymlink)
            else {
                throw AutoupdateError(
                    .unsafeEntry, "symlink \(quoted(link.entry)) points to \(quoted(link.target)), which leaves the destination")
            }
            try writer.symlink(link.components, target: link.target, entry: link.entry)
        }
    }
}

@available(*, unavailable)
extension ExtractionSession: Sendable {}

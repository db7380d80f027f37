import CAutoupdateSystem
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Builds a release's tree in a staging folder from pieces: files copied from the installed
/// tree, zip entries decoded from fetched ranges, files of seekable members extracted elsewhere.
///
/// Every file is written through a ``TreeWriter`` (no symlink followed, nothing overwritten that
/// it did not create) and hashed as it is written: one whose size or SHA-256 is not the
/// manifest's fails the whole staging, which the caller then discards. Folders, symlinks (their
/// targets checked by the extractor's policy) and modes come from the manifest, last.
/// Synchronous: run it on a thread of its own.
final class DeltaStager {
    private let manifest: ReleaseManifest
    private let writer: TreeWriter
    private let entries: [String: ReleaseManifest.Entry]
    private(set) var staged: Set<String> = []
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)

    /// Files the install leaves in place: the staged tree lacks them on purpose.
    private let kept: Set<String>

    init(manifest: ReleaseManifest, staging: String, keeping kept: Set<String> = []) throws {
        self.manifest = manifest
        self.kept = kept
        writer = try TreeWriter(destination: staging)
        entries = Dictionary(manifest.files.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
    }

    deinit {
        buffer.deallocate()
    }

    /// Removes everything staged so far.
    func rollback() {
        writer.rollback()
    }

    // MARK: Files

    /// Copies the installed file at `path` (checked again while it is copied).
    func copyInstalled(_ path: String, from installed: Folder) throws {
        let parts = path.split(separator: "/").map(String.init)
        try installed.withParentDescriptor(parts) { parent, name in
            guard case .success(let raw) = Syscall.openAt(parent, name, O_RDONLY | O_NOFOLLOW) else {
                throw mismatch(path, "the installed copy can no longer be read")
            }
            let source = OpenDescriptor(taking: raw)
            try write(path, cloningFrom: source.raw) { sink in
                while true {
                    let count = read(source.raw, buffer.baseAddress, buffer.count)
                    if count < 0, errno == EINTR { continue }
                    guard count >= 0 else { throw mismatch(path, "reading the installed copy failed") }
                    if count == 0 { break }
                    try sink(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                }
            }
        }
    }

    /// Decodes the zip entries for `paths` from `file`, which holds the archive's bytes from
    /// `rangeOffset` on.
    func stageZipEntries(_ paths: [String], from file: String, rangeOffset: Int64) throws {
        guard let input = OpenFile(forReadingAtPath: file) else { throw AutoupdateError.unreadable(file) }
        defer { try? input.close() }
        let decoder = try RawDeflateDecoder()
        for path in paths {
            guard let entry = entries[path], let offset = entry.offset, let length = entry.length else {
                throw mismatch(path, "the manifest gives no range for it")
            }
            try input.seek(toOffset: UInt64(offset - rangeOffset))
            let header = [UInt8](try input.read(upToCount: 30) ?? Data())
            guard header.count == 30, header[0..<4] == [0x50, 0x4B, 0x03, 0x04] else {
                throw mismatch(path, "no zip local header where the manifest says (byte \(offset))")
            }
            let flags = UInt16(header[6]) | UInt16(header[7]) << 8
            let method = UInt16(header[8]) | UInt16(header[9]) << 8
            let nameLength = Int64(header[26]) | Int64(header[27]) << 8
            let extraLength = Int64(header[28]) | Int64(header[29]) << 8
            let name = [UInt8](try input.read(upToCount: Int(nameLength)) ?? Data())
            let dataLength = length - 30 - nameLength - extraLength
            guard name == Array(path.utf8), flags & 0x0008 == 0, method == 0 || method == 8, dataLength >= 0 else {
                throw mismatch(path, "the zip entry at byte \(offset) is not this file")
            }
            try input.seek(toOffset: UInt64(offset - rangeOffset + 30 + nameLength + extraLength))
            decoder.reset()
            try write(path) { sink in
                var left = dataLength
                var ended = method == 0
                while left > 0 {
                    guard let data = try input.read(upToCount: Int(min(left, 1 << 20))), !data.isEmpty else {
                        throw mismatch(path, "the fetched range ends inside the entry")
                    }
                    left -= Int64(data.count)
                    try data.withUnsafeBytes { bytes in
                        if method == 0 {
                            try sink(bytes)
                        } else {
                            let result: (consumed: Int, ended: Bool)
                            do {
                                result = try decoder.decode(bytes, output: sink)
                            } catch let corrupt as RawDeflateDecoder.Corrupt {
                                throw self.mismatch(path, "its deflate data is corrupt (zlib: \(corrupt.message))")
                            }
                            ended = result.ended
                            if ended, result.consumed != bytes.count || left > 0 {
                                throw self.mismatch(path, "its deflate data ends before the entry does")
                            }
                        }
                    }
                }
                guard ended else { throw mismatch(path, "its deflate data is cut short") }
            }
        }
    }

    /// Copies `paths` from a folder a seekable member was extracted into.
    func stageExtracted(_ paths: [String], from scratch: Folder) throws {
        for path in paths {
            try copyInstalled(path, from: scratch)
        }
    }

    /// Creates `path` and writes it through `body`'s sink, checking the manifest's size and
    /// SHA-256; its mode is set from the manifest. With `cloningFrom`, the file first shares that
    /// file's blocks where the file system can (a reflink: Btrfs, XFS); the bytes are still read
    /// and checked, but not written again.
    private func write(
        _ path: String, cloningFrom source: Int32? = nil, _ body: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws {
        guard let entry = entries[path], entry.type == .file, let size = entry.size, let expected = entry.sha256,
            let mode = entry.permissions
        else {
            throw mismatch(path, "the manifest lists no such file")
        }
        let parts = path.split(separator: "/").map(String.init)
        let file = OpenDescriptor(taking: try writer.createFile(parts, entry: path, replacing: false))
        let cloned = source.map { autoupdate_clone_file(file.raw, $0) == 0 } ?? false
        let digest = try SHA256Digest()
        var written: Int64 = 0
        try body { bytes in
            written += Int64(bytes.count)
            guard written <= size else { throw self.mismatch(path, "it is longer than the manifest's \(size) bytes") }
            digest.update(bytes)
            if cloned { return }
            var rest = bytes
            while !rest.isEmpty {
                let count = systemWrite(file.raw, rest.baseAddress, rest.count)
                if count < 0, errno == EINTR { continue }
                guard count > 0 else {
                    throw AutoupdateError(.fileSystem, "cannot write the staged file \(quoted(path)) (\(Errno.current))")
                }
                rest = UnsafeRawBufferPointer(rebasing: rest[count...])
            }
        }
        guard written == size else { throw mismatch(path, "it has \(written) bytes, and the manifest says \(size)") }
        let actual = digest.finalize()
        guard actual == expected else { throw mismatch(path, "its SHA-256 is \(actual), and the manifest says \(expected)") }
        if case .failure(let errno) = Syscall.changeMode(file.raw, mode_t(mode)) {
            throw AutoupdateError(.fileSystem, "cannot set the mode of the staged file \(quoted(path)) (\(errno))")
        }
        staged.insert(path)
    }

    // MARK: The rest of the tree

    /// Creates the manifest's empty folders, empty files and symlinks, checks that every file
    /// was staged, and gives folders their modes. Other folders are made only as the staged
    /// entries need them: one that holds only kept files stays out of the staged tree (the
    /// install gives it its mode from the manifest).
    func finish() throws {
        var holdingEntries = Set<Substring>()
        for entry in manifest.files {
            var path = Substring(entry.path)
            while let slash = path.lastIndex(of: "/") {
                path = path[..<slash]
                guard holdingEntries.insert(path).inserted else { break }
            }
        }
        var symlinks: [String: String] = [:]
        for entry in manifest.files where entry.type == .symlink {
            symlinks[entry.path] = entry.target
        }
        for entry in manifest.files {
            let parts = entry.path.split(separator: "/").map(String.init)
            switch entry.type {
            case .directory where holdingEntries.contains(Substring(entry.path)):
                continue
            case .directory:
                try writer.makeDirectory(parts, entry: entry.path)
            case .file where kept.contains(entry.path):
                continue
            case .file where entry.size == 0 && !staged.contains(entry.path):
                try write(entry.path) { _ in }
            case .file:
                guard staged.contains(entry.path) else { throw mismatch(entry.path, "no piece of the update holds it") }
            case .symlink:
                let target = entry.target ?? ""
                guard
                    ExtractionPolicy.symlinkStaysInside(
                        link: parts, target: target, symlinks: symlinks, isForeignSymlink: writer.isForeignSymlink)
                else {
                    throw AutoupdateError(
                        .unsafeEntry, "the manifest's symlink \(quoted(entry.path)) points to \(quoted(target)), outside the app folder")
                }
                try writer.symlink(parts, target: target, entry: entry.path)
            }
        }
        var modes: [String: (mode: UInt32, modificationTime: Int64?)] = [:]
        for entry in manifest.files where entry.type == .directory {
            modes[entry.path] = (entry.permissions ?? 0o755, nil)
        }
        try writer.finishFolders(attributes: modes)
    }

    // MARK: The whole build

    /// Builds the staged tree: the `copying` files from `installed` and the `resumed` ones from
    /// an interrupted download's folder, then every fetched range (in `rangeFiles`, one file per
    /// range of `plan`) decoded, then the rest of the tree but the files in `keeping`, which the
    /// install leaves in place. On any failure nothing staged remains.
    static func build(
        manifest: ReleaseManifest, plan: DeltaPlan, copying: [String], keeping: Set<String>, format: ArchiveFormat,
        rangeFiles: [String], installed: String, staging: String, scratch: String,
        resuming resumed: (paths: Set<String>, from: String) = ([], "")
    ) throws {
        let stager = try DeltaStager(manifest: manifest, staging: staging, keeping: keeping)
        do {
            let installedFolder = try Folder(path: installed)
            for path in copying where (stager.entries[path]?.size ?? 0) > 0 {
                try stager.copyInstalled(path, from: installedFolder)
            }
            if !resumed.paths.isEmpty {
                let partial = try Folder(path: resumed.from)
                for path in resumed.paths.sorted() where (stager.entries[path]?.size ?? 0) > 0 {
                    try stager.copyInstalled(path, from: partial)
                }
            }
            let wanted = Set(plan.fetched)
            for (range, file) in zip(plan.ranges, rangeFiles) {
                if format == .zip {
                    let inside = manifest.files.filter { entry in
                        wanted.contains(entry.path) && (entry.offset.map { $0 >= range.offset && $0 < range.end } ?? false)
                    }
                    try stager.stageZipEntries(inside.map(\.path), from: file, rangeOffset: range.offset)
                } else {
                    for (index, member) in (manifest.members ?? []).enumerated()
                    where member.offset >= range.offset && member.offset + member.size <= range.end {
                        let inside = manifest.files.filter { $0.member == index && wanted.contains($0.path) }
                        guard !inside.isEmpty else { continue }
                        try stager.stageMember(
                            member, holding: inside.map(\.path), format: format, from: file, rangeOffset: range.offset,
                            scratch: scratch + "-\(index)")
                    }
                }
            }
            try stager.finish()
        } catch {
            stager.rollback()
            throw error
        }
    }

    /// Extracts one seekable member (with an end-of-archive member after it, so that it reads as
    /// a whole archive) into `scratch` under every rule of the extractor, and stages `paths`
    /// from there.
    private func stageMember(
        _ member: ReleaseManifest.Member, holding paths: [String], format: ArchiveFormat, from file: String, rangeOffset: Int64,
        scratch: String
    ) throws {
        guard let input = OpenFile(forReadingAtPath: file) else { throw AutoupdateError.unreadable(file) }
        defer { try? input.close() }
        defer { try? TreeRemoval.remove(path: scratch) }
        let session = try ExtractionSession(
            format: format, destination: scratch, configuration: ExtractionConfiguration(maxBytes: member.unpacked, maxEntries: 100_000))
        do {
            try input.seek(toOffset: UInt64(member.offset - rangeOffset))
            var left = member.size
            while left > 0 {
                guard let data = try input.read(upToCount: Int(min(left, 1 << 20))), !data.isEmpty else {
                    throw AutoupdateError(
                        .corruptArchive, "differential update: the fetched range ends inside member at byte \(member.offset)")
                }
                left -= Int64(data.count)
                try data.withUnsafeBytes { try session.consume($0) }
            }
            let end = try Self.endOfArchiveMember(format)
            try end.withUnsafeBytes { try session.consume($0) }
            _ = try session.finish()
        } catch {
            session.rollback()
            throw error
        }
        try stageExtracted(paths, from: try Folder(path: scratch))
    }

    /// A compressed member holding tar's end of archive (two zero blocks).
    private static func endOfArchiveMember(_ format: ArchiveFormat) throws -> [UInt8] {
        let compressor: any StreamCompressor = format == .tarBzip2 ? try Bzip2CompressStream() : try DeflateStream(gzip: true)
        var bytes: [UInt8] = []
        let zeros = [UInt8](repeating: 0, count: 1024)
        try zeros.withUnsafeBytes { try compressor.compress($0) { bytes += $0 } }
        try compressor.finish { bytes += $0 }
        return bytes
    }

    private func mismatch(_ path: String, _ reason: String) -> AutoupdateError {
        AutoupdateError(.checksumMismatch, "differential update: \(quoted(path)): \(reason)")
    }
}

@available(*, unavailable)
extension DeltaStager: Sendable {}

/// `write(2)`, named apart from the stager's own `write`.
private func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer?, _ count: Int) -> Int {
    write(descriptor, bytes, count)
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

/// Extracts archives (zip, tar, tar.gz, tar.bz2) into a folder, safely, while they arrive.
///
/// Decoding, parsing and writing run on a thread of the extraction's own (never on the
/// cooperative pool); the caller's task feeds it through a bounded buffer, so a download and its
/// extraction run at the same time and memory stays bounded.
///
/// ```swift
/// let extractor = Extractor()
/// let report = try await extractor.extract(file: "project.tar.gz", to: "staging")
/// print(report.files, report.bytes)
/// ```
///
/// ### Security
/// Every archive is hostile until proven otherwise. Refused, naming the entry: absolute paths,
/// `..` components, symlinks that resolve outside the destination (checked as the kernel would
/// resolve them, links of the archive included), writing through a symlink (every write uses
/// `openat` with `O_NOFOLLOW`), hard links to anything but an earlier file of the archive,
/// devices, FIFOs, duplicate names that would replace a link or folder, zip local headers that
/// disagree with the central directory, CRC and size mismatches, truncation, and archives beyond
/// ``ExtractionConfiguration/maxBytes`` or ``ExtractionConfiguration/maxEntries``. Setuid, setgid
/// and sticky bits are dropped. Nothing that was in the destination before is ever overwritten.
/// One bad entry fails the whole archive, and everything the extraction created is removed.
/// Out of scope: what the extracted programs do when run; the signature check decides whether
/// they may be installed at all.
public final class Extractor: Sendable {
    /// Limits every extraction of this extractor uses.
    public let configuration: ExtractionConfiguration
    private let logger: Logger

    /// Bytes that may wait between the feeding task and the extraction thread.
    static let feedLimit = 4 << 20

    public init(configuration: ExtractionConfiguration = ExtractionConfiguration(), logger: Logger = Logger(label: "autoupdate.extract")) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Extracts an archive file.
    ///
    /// - Parameters:
    ///   - path: The archive.
    ///   - destination: The folder to extract into; created if missing.
    ///   - format: The archive's format; by default from its name (`.zip`, `.tar`, `.tar.gz`,
    ///     `.tgz`, `.tar.bz2`, `.tbz2`), else from its first bytes.
    /// - Returns: What was extracted.
    /// - Throws: ``AutoupdateError`` naming the entry at fault (`.unsafeEntry`,
    ///   `.corruptArchive`, `.checksumMismatch`, `.unsupportedArchive`, `.sizeLimitExceeded`,
    ///   `.fileSystem`); nothing created by the extraction remains.
    public func extract(file path: String, to destination: String, format: ArchiveFormat? = nil) async throws -> ExtractionReport {
        let format = try format ?? ArchiveFormat.detect(path: path)
        // Nothing flows through the feed here: the thread reads the file itself; the feed only
        // carries the task's cancellation to it.
        let feed = Self.makeFeed()
        let worker = startWorker(format: format, destination: destination, feed: feed) { session in
            let input: Int32
            switch Syscall.openAt(AT_FDCWD, path, O_RDONLY) {
            case .success(let descriptor): input = descriptor
            case .failure(let errno):
                throw AutoupdateError(.fileSystem, "cannot open the archive \(quoted(path)) (\(errno))", underlying: errno)
            }
            defer { close(input) }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            while !feed.isCancelled {
                let count = read(input, buffer.baseAddress, buffer.count)
                if count < 0 {
                    if errno == EINTR { continue }
                    throw AutoupdateError(
                        .fileSystem, "cannot read the archive \(quoted(path)) (\(Errno.current))", underlying: Errno.current)
                }
                if count == 0 {
                    return
                }
                try session.consume(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            }
            throw CancellationError()
        }
        return try await withTaskCancellationHandler {
            try await worker.value.get()
        } onCancel: {
            feed.cancel()
        }
    }

    /// Extracts an archive as its bytes arrive (from a download, say).
    ///
    /// - Parameters:
    ///   - input: The archive's bytes, in order, in chunks of any size.
    ///   - format: The archive's format.
    ///   - destination: The folder to extract into; created if missing.
    /// - Returns: What was extracted.
    /// - Throws: ``AutoupdateError`` as ``extract(file:to:format:)`` does, or the input's own
    ///   error; nothing created by the extraction remains. Cancelling the task stops both.
    public func extract<Input: AsyncSequence & Sendable>(
        _ input: Input, format: ArchiveFormat, to destination: String
    ) async throws -> ExtractionReport where Input.Element == [UInt8] {
        let sink = start(format: format, to: destination)
        do {
            for try await chunk in input {
                try await sink.send(chunk)
            }
            // A cancelled input may just end early: that is a cancellation, not a short archive.
            try Task.checkCancellation()
        } catch {
            try await sink.fail(error)
        }
        return try await sink.finish()
    }

    /// Starts an extraction fed chunk by chunk (the update pipeline feeds it from the download).
    ///
    /// - Parameter maxBytes: A tighter cap on the extracted bytes than the configuration's, for
    ///   this extraction (a signed release says what it unpacks to).
    func start(format: ArchiveFormat, to destination: String, maxBytes: Int64? = nil) -> ExtractionSink {
        let feed = Self.makeFeed()
        var configuration = configuration
        configuration.maxBytes = min(configuration.maxBytes, maxBytes ?? .max)
        let keep = Locked(false)
        let worker = startWorker(
            format: format, destination: destination, configuration: configuration, feed: feed, keepOnInputFailure: keep
        ) { session in
            while let chunk = try feed.nextBlocking() {
                try chunk.withUnsafeBytes { try session.consume($0) }
            }
        }
        return ExtractionSink(feed: feed, worker: worker, keepOnInputFailure: keep)
    }

    /// The hand-off from the feeding task to the extraction thread: bounded, so a fast network
    /// waits for a slow disk instead of filling memory.
    private static func makeFeed() -> Handoff<[UInt8]> {
        Handoff(.halving(feedLimit))
    }

    private func startWorker(
        format: ArchiveFormat, destination: String, configuration: ExtractionConfiguration? = nil, feed: Handoff<[UInt8]>,
        keepOnInputFailure: Locked<Bool> = Locked(false), input: @escaping @Sendable (ExtractionSession) throws -> Void
    ) -> BackgroundThread<Result<ExtractionReport, any Error>> {
        let configuration = configuration ?? self.configuration
        let logger = logger
        logger.debug("extraction starting", metadata: ["archive.format": "\(format)", "archive.destination": "\(destination)"])
        return BackgroundThread.start(name: "autoupdate.extract") {
            let outcome: Result<ExtractionReport, any Error>
            do {
                let session = try ExtractionSession(format: format, destination: destination, configuration: configuration)
                do {
                    try input(session)
                    outcome = .success(try session.finish())
                } catch {
                    // The feeder's input failed and it wants what is written kept: the files so
                    // far are resumable pieces, each checked against a manifest before any reuse.
                    if !keepOnInputFailure.withLock({ $0 }) {
                        session.rollback()
                    }
                    throw error
                }
            } catch {
                outcome = .failure(error)
            }
            feed.consumerEnded()
            switch outcome {
            case .success(let report):
                logger.debug("extraction done", metadata: ["archive.entries": "\(report.entries)", "archive.bytes": "\(report.bytes)"])
            case .failure(let error):
                logger.debug("extraction failed", metadata: ["error": "\(error)"])
            }
            return outcome
        }
    }
}

/// The feeding end of an extraction started with ``Extractor/start(format:to:)``.
///
/// - Important: End it exactly once, with ``finish()`` or ``fail(_:)``: both wait until the
///   extraction thread is done (and has removed what it created, on failure).
struct ExtractionSink: Sendable {
    let feed: Handoff<[UInt8]>
    let worker: BackgroundThread<Result<ExtractionReport, any Error>>
    let keepOnInputFailure: Locked<Bool>

    /// Queues the next chunk; waits while the extraction thread is behind.
    ///
    /// - Throws: The extraction's own error once it has failed, or `CancellationError`.
    func send(_ chunk: [UInt8]) async throws {
        do {
            try await withTaskCancellationHandler {
                try await feed.send(chunk, weight: chunk.count)
            } onCancel: {
                feed.cancel()
            }
        } catch is Handoff<[UInt8]>.ConsumerEnded {
            // The extraction stopped early (a bad entry): its error is the one to report.
            _ = try await worker.value.get()
            throw AutoupdateError(.corruptArchive, "the archive continues after its end")
        }
    }

    /// The input is complete: waits for the extraction to finish.
    func finish() async throws -> ExtractionReport {
        feed.finish()
        return try await withTaskCancellationHandler {
            try await worker.value.get()
        } onCancel: {
            feed.cancel()
        }
    }

    /// The input failed: stops the extraction, waits for its clean-up, and rethrows — the
    /// extraction's own error if it had already failed, else `error`.
    ///
    /// - Parameter keepingWhatIsWritten: Extracts what was already sent, then leaves the files
    ///   extracted (the last one may be cut short, and a later entry may have failed) instead of
    ///   removing them: pieces that a resumed download checks one by one.
    func fail(_ error: any Error, keepingWhatIsWritten: Bool = false) async throws -> Never {
        if keepingWhatIsWritten {
            keepOnInputFailure.withLock { $0 = true }
            feed.finish()
            _ = await worker.value
            throw error
        }
        feed.cancel()
        if case .failure(let extractionError) = await worker.value, !(extractionError is CancellationError) {
            throw extractionError
        }
        throw error
    }
}

extension ArchiveFormat {
    /// The format of an archive file: by its name, else by its first bytes.
    ///
    /// - Throws: ``AutoupdateError/Code/unsupportedArchive`` when neither tells.
    public static func detect(path: String) throws -> ArchiveFormat {
        if let format = ArchiveFormat(fileName: path) {
            return format
        }
        guard let handle = OpenFile(forReadingAtPath: path) else {
            throw AutoupdateError(.fileSystem, "cannot open the archive \(quoted(path))")
        }
        defer { try? handle.close() }
        let head = Array((try? handle.read(upToCount: 512)) ?? Data())
        if let format = detect(head: head) {
            return format
        }
        throw AutoupdateError(
            .unsupportedArchive, "cannot tell the format of \(quoted(path)): it is not a zip, tar, tar.gz or tar.bz2 archive")
    }

    /// The format its first bytes show, or `nil`.
    static func detect(head: [UInt8]) -> ArchiveFormat? {
        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) || head.starts(with: [0x50, 0x4B, 0x05, 0x06]) {
            return .zip
        }
        if head.starts(with: [0x1F, 0x8B]) {
            return .tarGzip
        }
        if head.starts(with: Array("BZh".utf8)) {
            return .tarBzip2
        }
        if head.count >= 262, head[257..<262].elementsEqual("ustar".utf8) {
            return .tar
        }
        return nil
    }
}

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
import SystemPackage

/// Reads `file:` URLs of a local update source (``UpdateURL/init(localFolder:)``) on a thread of
/// its own, into the same ``TransferCore`` a network transfer fills, with HTTP's meanings: a
/// missing file is a 404 (no release index: `version.txt` is read), the validator is the file's
/// size and modification time (a conditional read of an unchanged file is a 304), one range is
/// a 206, several ranges are refused as a server that does not do them (the caller asks for
/// them one by one). The same limits apply as to a server's body.
enum LocalFileTransfer {
    static func start(
        core: TransferCore, url: URL, conditional: HTTPValidator?, expectedLength: Int64?, maxBytes: Int64, range: ClosedRange<Int64>?,
        completeLength: Int64?, multipleRanges: Bool, chunkSize: Int
    ) {
        BackgroundThread.start(name: "autoupdate.read") {
            do {
                let head = try transfer(
                    core: core, url: url, conditional: conditional, expectedLength: expectedLength, maxBytes: maxBytes, range: range,
                    completeLength: completeLength, multipleRanges: multipleRanges, chunkSize: chunkSize)
                core.finish(failure: nil, head: head)
            } catch {
                core.finish(failure: error, head: nil)
            }
        }
    }

    private static func transfer(
        core: TransferCore, url: URL, conditional: HTTPValidator?, expectedLength: Int64?, maxBytes: Int64, range: ClosedRange<Int64>?,
        completeLength: Int64?, multipleRanges: Bool, chunkSize: Int
    ) throws -> ResponseHead? {
        let shown = url.path
        if multipleRanges {
            throw AutoupdateError(.rangeNotHonoured, "reading \(quoted(shown)): several ranges are read one by one")
        }
        let file: FileDescriptor
        do {
            file = try FileDescriptor.open(FilePath(url.path), .readOnly, options: [.closeOnExec])
        } catch let errno as Errno where errno == .noSuchFileOrDirectory || errno == .notDirectory {
            throw AutoupdateError(
                .httpStatus, "reading \(quoted(shown)): no such file in the update source",
                underlying: HTTPStatusFailure(status: 404, url: url, retryAfter: nil))
        } catch {
            throw AutoupdateError(.network, "reading \(quoted(shown)): \(describeFileError(error))", underlying: error)
        }
        defer { try? file.close() }
        var info = stat()
        guard fstat(file.rawValue, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw AutoupdateError(.network, "reading \(quoted(shown)): not a regular file")
        }
        let size = Int64(info.st_size)
        let validator = HTTPValidator(entityTag: "\"\(size)-\(info.st_mtim.tv_sec)-\(info.st_mtim.tv_nsec)\"")
        if let conditional, conditional.entityTag == validator.entityTag {
            return ResponseHead(status: 304, validator: validator)
        }
        var start: Int64 = 0
        var length = size
        if let range {
            if let completeLength, completeLength != size {
                throw AutoupdateError(
                    .rangeNotHonoured, "reading \(quoted(shown)): the file has \(size) bytes, not the \(completeLength) the release gives")
            }
            guard range.upperBound < size else {
                throw AutoupdateError(.rangeNotHonoured, "reading \(quoted(shown)): bytes \(range) are past its end (\(size) bytes)")
            }
            start = range.lowerBound
            length = range.upperBound - range.lowerBound + 1
        } else if let expectedLength, expectedLength != size {
            throw AutoupdateError(
                .network, "reading \(quoted(shown)): the file has \(size) bytes, not the \(expectedLength) the release gives")
        }
        guard length <= maxBytes else {
            throw AutoupdateError(.sizeLimitExceeded, "reading \(quoted(shown)): \(length) bytes, more than the limit of \(maxBytes)")
        }
        var offset = start
        var delivered: Int64 = 0
        while delivered < length {
            let wanted = Int(min(Int64(max(4096, chunkSize)), length - delivered))
            var bytes = [UInt8](repeating: 0, count: wanted)
            let read = try bytes.withUnsafeMutableBytes { try file.read(fromAbsoluteOffset: offset, into: $0, retryOnInterrupt: true) }
            guard read > 0 else {
                throw AutoupdateError(
                    .network, "reading \(quoted(shown)): it ended after \(delivered) of \(length) bytes (changed while read?)")
            }
            bytes.removeLast(wanted - read)
            offset += Int64(read)
            delivered += Int64(read)
            let chunk = DownloadChunk(
                bytes: bytes, progress: DownloadProgress(receivedBytes: delivered, totalBytes: length, bytesPerSecond: 0))
            guard core.deliver(chunk) else { throw CancellationError() }
        }
        return ResponseHead(status: range == nil ? 200 : 206, validator: validator)
    }
}

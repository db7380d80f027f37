#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where each entry of a published archive lives, for the release manifest: byte ranges in a zip
/// or a plain tar, members of a compressed tar.
struct ArchiveLayout {
    enum Location: Equatable {
        /// The entry's bytes, headers included, in a zip or plain tar.
        case range(offset: Int64, length: Int64)
        /// The index of the gzip member or bzip2 stream holding the entry.
        case member(Int)
    }

    /// One per entry of the tree, in its order.
    var locations: [Location] = []
    /// Compressed tars: every member.
    var members: [ReleaseManifest.Member] = []
}

/// Compresses a tar stream as independent members (gzip members, bzip2 streams) that start at
/// entry boundaries, so a client can fetch and decode the members that hold the files it needs.
/// The result is one valid `.tar.gz` or `.tar.bz2`: every reader decodes concatenated members.
///
/// Small entries share a member until it holds at least `threshold` bytes; an entry of
/// `threshold` bytes or more gets a member of its own. gzip's window is 32 KiB, so members of
/// 256 KiB cost little; bzip2 compresses 900 kB blocks, so its members hold at least that much.
final class SeekableCompressor {
    private let makeCompressor: () throws -> any StreamCompressor
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    let threshold: Int64
    private var compressor: (any StreamCompressor)?
    /// Compressed bytes written so far, and where the current member starts.
    private var written: Int64 = 0
    private var memberStart: Int64 = 0
    /// Uncompressed bytes in the current member.
    private(set) var pending: Int64 = 0
    private(set) var members: [ReleaseManifest.Member] = []

    init(format: ArchiveFormat, sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        switch format {
        case .tarBzip2:
            makeCompressor = { try Bzip2CompressStream() }
            threshold = 900_000
        default:
            makeCompressor = { try DeflateStream(gzip: true, level: 6) }
            threshold = 256 << 10
        }
        self.sink = sink
    }

    /// The index of the member the next bytes go into.
    var currentMember: Int { members.count }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !bytes.isEmpty else { return }
        if compressor == nil {
            compressor = try makeCompressor()
        }
        try compressor!.compress(bytes) { piece in
            try sink(piece)
            written += Int64(piece.count)
        }
        pending += Int64(bytes.count)
    }

    /// Ends the current member, if it holds anything.
    func endMember() throws {
        guard let compressor, pending > 0 else { return }
        try compressor.finish { piece in
            try sink(piece)
            written += Int64(piece.count)
        }
        members.append(ReleaseManifest.Member(offset: memberStart, size: written - memberStart, unpacked: pending))
        memberStart = written
        pending = 0
        self.compressor = nil
    }
}

@available(*, unavailable)
extension SeekableCompressor: Sendable {}

/// What a differential update fetches: the new release's files that the installed tree does not
/// already hold, as the archive's byte ranges that contain them (zip entries, or the gzip
/// members / bzip2 streams of a seekable tar), sorted and coalesced.
///
/// A pure function of the manifest and of what was found on disk, so that it is tested table by
/// table; ``InstalledTree`` finds which installed files still hold the manifest's bytes.
public struct DeltaPlan: Sendable, Hashable {
    /// A span of the archive to request.
    public struct ByteRange: Sendable, Hashable, CustomStringConvertible {
        public let offset: Int64
        public let length: Int64

        public init(offset: Int64, length: Int64) {
            self.offset = offset
            self.length = length
        }

        /// One past the last byte.
        public var end: Int64 { offset + length }
        /// As an HTTP `Range` spec: `first-last`.
        public var description: String { "\(offset)-\(end - 1)" }
    }

    /// Files whose installed bytes are the release's: copied from the installed tree.
    public let reused: [String]
    /// Files whose bytes come from the archive.
    public let fetched: [String]
    /// The archive's bytes to request, sorted, coalesced where the gap between two is small.
    public let ranges: [ByteRange]
    /// The full archive's size.
    public let archiveSize: Int64

    /// What the ranges add up to.
    public var bytesToFetch: Int64 { ranges.reduce(0) { $0 + $1.length } }

    /// Whether fetching the ranges is worth it: less than ``worthwhileShare`` of the archive.
    public var isWorthwhile: Bool { Double(bytesToFetch) < Double(archiveSize) * Self.worthwhileShare }

    /// Above this share of the archive, a full download (one streaming request) is simpler and
    /// about as cheap.
    public static let worthwhileShare = 0.8

    /// Two ranges closer than this are fetched as one: a request costs more than a few KiB.
    public static let defaultMaximumGap: Int64 = 32 << 10

    /// Plans the fetch.
    ///
    /// - Parameters:
    ///   - manifest: The new release's manifest.
    ///   - archiveSize: The archive's size (from the release index).
    ///   - reusable: Paths of files whose installed bytes are the manifest's (see ``InstalledTree``).
    ///   - maximumGap: Ranges closer than this are merged.
    /// - Returns: `nil` when the manifest does not say where the needed bytes are (a release
    ///   published before autoupdate recorded offsets): the update downloads the whole archive.
    public static func make(
        manifest: ReleaseManifest, archiveSize: Int64, reusable: Set<String>, maximumGap: Int64 = defaultMaximumGap
    ) -> DeltaPlan? {
        var reused: [String] = []
        var fetched: [String] = []
        var units: [ByteRange] = []
        var members: Set<Int> = []
        for entry in manifest.files where entry.type == .file {
            if entry.size == 0 || reusable.contains(entry.path) {
                reused.append(entry.path)
                continue
            }
            fetched.append(entry.path)
            if let member = entry.member, let all = manifest.members, all.indices.contains(member) {
                if members.insert(member).inserted {
                    units.append(ByteRange(offset: all[member].offset, length: all[member].size))
                }
            } else if let offset = entry.offset, let length = entry.length, length > 0 {
                units.append(ByteRange(offset: offset, length: length))
            } else {
                return nil
            }
        }
        guard units.allSatisfy({ $0.offset >= 0 && $0.end <= archiveSize }) else { return nil }
        units.sort { $0.offset < $1.offset }
        var ranges: [ByteRange] = []
        for unit in units {
            if let last = ranges.last, unit.offset - last.end <= maximumGap {
                ranges[ranges.count - 1] = ByteRange(offset: last.offset, length: max(last.end, unit.end) - last.offset)
            } else {
                ranges.append(unit)
            }
        }
        return DeltaPlan(reused: reused, fetched: fetched, ranges: ranges, archiveSize: archiveSize)
    }
}

/// The container and compression of an archive.
public enum ArchiveFormat: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// A zip archive (`.zip`): stored and deflated entries.
    case zip
    /// An uncompressed tar archive (`.tar`).
    case tar
    /// A gzip-compressed tar archive (`.tar.gz`, `.tgz`).
    case tarGzip
    /// A bzip2-compressed tar archive (`.tar.bz2`, `.tbz2`, `.tbz`).
    case tarBzip2

    /// The format a file name's extension names (case-insensitive), or `nil`.
    ///
    /// - Parameter fileName: A file name or path, such as `project.tar.gz`.
    public init?(fileName: String) {
        let name = fileName.lowercased()
        if name.hasSuffix(".zip") {
            self = .zip
        } else if name.hasSuffix(".tar") {
            self = .tar
        } else if name.hasSuffix(".tar.gz") || name.hasSuffix(".tgz") {
            self = .tarGzip
        } else if name.hasSuffix(".tar.bz2") || name.hasSuffix(".tbz2") || name.hasSuffix(".tbz") {
            self = .tarBzip2
        } else {
            return nil
        }
    }

    /// The usual extension, with its dot.
    public var fileExtension: String {
        switch self {
        case .zip: ".zip"
        case .tar: ".tar"
        case .tarGzip: ".tar.gz"
        case .tarBzip2: ".tar.bz2"
        }
    }

    public var description: String { fileExtension }
}

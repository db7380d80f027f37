/// The name of the update archive on the server (the seed's `newfiles`), validated.
///
/// A single file name (no `/` or `\`, not `.` or `..`, no control characters) ending with
/// `.zip`, `.tar.gz` or `.tar.bz2`, the formats the seed publishes.
///
/// ```swift
/// let archive = try ArchiveName("project.tar.gz")
/// archive.format   // .tarGzip
/// ```
public struct ArchiveName: Sendable, Hashable, CustomStringConvertible {
    /// The seed's default, `project.zip`.
    public static let `default` = ArchiveName(unchecked: "project.zip", format: .zip)

    /// The file name, as given.
    public let name: String
    /// The archive format its extension names.
    public let format: ArchiveFormat

    private init(unchecked name: String, format: ArchiveFormat) {
        self.name = name
        self.format = format
    }

    /// Validates an archive name.
    ///
    /// - Parameter name: A file name such as `project.zip`.
    /// - Throws: ``AutoupdateError`` with code ``AutoupdateError/Code/invalidArgument`` naming the
    ///   name and the rule it breaks.
    public init(_ name: String) throws {
        let shown = quoted(name)
        guard !name.isEmpty else {
            throw AutoupdateError(.invalidArgument, "the archive name is empty; use a name such as project.zip")
        }
        guard !name.contains("/"), !name.contains("\\"), name != ".", name != ".." else {
            throw AutoupdateError(
                .invalidArgument, "the archive name \(shown) must be a single file name, without '/', '\\' or '..'")
        }
        guard !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw AutoupdateError(.invalidArgument, "the archive name \(shown) contains control characters")
        }
        guard let format = ArchiveFormat(fileName: name), [.zip, .tarGzip, .tarBzip2].contains(format),
            name.lowercased().hasSuffix(format.fileExtension), name.count > format.fileExtension.count
        else {
            throw AutoupdateError(
                .invalidArgument, "the archive name \(shown) must end with .zip, .tar.gz or .tar.bz2")
        }
        self.name = name
        self.format = format
    }

    public var description: String { name }
}

public import Foundation

/// A folder's contents, file by file, for comparing extractions: types, permission bits,
/// bytes and link targets (not times or owners).
public struct TreeSnapshot: Equatable, CustomStringConvertible, Sendable {
    public enum Node: Equatable, Sendable {
        case file(mode: UInt16, bytes: Data)
        case directory(mode: UInt16)
        case symlink(target: String)
    }

    public let nodes: [String: Node]

    /// Snapshots everything under `root` (not following symlinks).
    public init(_ root: URL) throws {
        var nodes: [String: Node] = [:]
        let manager = FileManager.default
        guard let enumerator = manager.enumerator(atPath: root.path) else {
            throw TestFailure("cannot list \(root.path)")
        }
        while let relative = enumerator.nextObject() as? String {
            let path = root.appending(path: relative).path
            let attributes = try manager.attributesOfItem(atPath: path)
            let mode = (attributes[.posixPermissions] as? NSNumber)?.uint16Value ?? 0
            switch attributes[.type] as? FileAttributeType {
            case .typeSymbolicLink?:
                nodes[relative] = .symlink(target: try manager.destinationOfSymbolicLink(atPath: path))
            case .typeDirectory?:
                nodes[relative] = .directory(mode: mode)
            default:
                nodes[relative] = .file(mode: mode, bytes: try Data(contentsOf: URL(fileURLWithPath: path)))
            }
        }
        self.nodes = nodes
    }

    /// The differences with another snapshot, one line each.
    public func differences(from other: TreeSnapshot) -> [String] {
        Set(nodes.keys).union(other.nodes.keys).sorted().compactMap { path in
            switch (nodes[path], other.nodes[path]) {
            case (nil, _): "only in the other: \(path)"
            case (_, nil): "only here: \(path)"
            case (let mine?, let theirs?) where mine != theirs: "differs: \(path): \(Self.describe(mine)) vs \(Self.describe(theirs))"
            default: nil
            }
        }
    }

    private static func describe(_ node: Node) -> String {
        switch node {
        case .file(let mode, let bytes): "file \(String(mode, radix: 8)) \(bytes.count) bytes"
        case .directory(let mode): "folder \(String(mode, radix: 8))"
        case .symlink(let target): "symlink -> \(target)"
        }
    }

    public var description: String {
        nodes.keys.sorted().map { "\($0): \(Self.describe(nodes[$0]!))" }.joined(separator: "\n")
    }
}

/// A folder with a destination inside it, to prove that an extraction wrote nothing outside
/// the destination: snapshot the sandbox before, compare after.
public struct ExtractionSandbox: Sendable {
    public let folder: TemporaryDirectory
    public var destination: URL { folder.url.appending(path: "dest") }
    private let before: TreeSnapshot

    public init() throws {
        folder = try TemporaryDirectory(prefix: "sandbox")
        // Bait: what an escaping entry would overwrite or write next to.
        try Data("bait\n".utf8).write(to: folder.url.appending(path: "outside.txt"))
        try FileManager.default.createDirectory(at: folder.url.appending(path: "etc"), withIntermediateDirectories: true)
        before = try TreeSnapshot(folder.url)
    }

    /// What changed outside `dest/` since the sandbox was made.
    public func changesOutsideDestination() throws -> [String] {
        let after = try TreeSnapshot(folder.url)
        let outside = after.nodes.filter { !$0.key.hasPrefix("dest/") && $0.key != "dest" }
        return TreeSnapshot(nodes: outside).differences(from: before)
    }
}

extension TreeSnapshot {
    /// A snapshot of the given nodes.
    public init(nodes: [String: Node]) {
        self.nodes = nodes
    }
}

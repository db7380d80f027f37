@testable import Autoupdate
import AutoupdateTestSupport
import Foundation
import Glibc
import Testing

/// The one walker every path of an extraction, an install and the app folder goes through.
@Suite("Path walker")
struct PathWalkerTests {
    static func walker(_ folder: TemporaryDirectory, maxCached: Int = 8) throws -> PathWalker {
        let descriptor = open(folder.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try #require(descriptor >= 0)
        return PathWalker(root: OpenDescriptor(taking: descriptor), maxCached: maxCached)
    }

    @Test("a symlink or a file where a folder is expected fails the walk, whatever it points to")
    func neverFollows() throws {
        let folder = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: folder.path + "/real/inside", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: folder.path + "/link", withDestinationPath: "real")
        try FileManager.default.createSymbolicLink(atPath: folder.path + "/out", withDestinationPath: "/etc")
        try Data("x".utf8).write(to: folder.url.appending(path: "file"))
        let walker = try Self.walker(folder)
        _ = try walker.folder(["real", "inside"])
        for path in [["link", "inside"], ["out"], ["file", "x"], ["real", "inside", "..", "..", "out"]] {
            #expect(throws: PathWalker.Failure.self, "\(path)") { _ = try walker.folder(path[...], creatingWith: 0o700) }
        }
        #expect(!FileManager.default.fileExists(atPath: "/etc/x"))
        switch Result(catching: { try walker.folder(["link", "inside"]) }) {
        case .failure(PathWalker.Failure.notAFolder(let path, _)): #expect(path == "link")
        default: Issue.record("expected notAFolder at 'link'")
        }
    }

    @Test("missing folders are made with the mode asked for, and reported")
    func creates() throws {
        let folder = try TemporaryDirectory()
        let walker = try Self.walker(folder)
        var made: [String] = []
        _ = try walker.folder(["a", "b", "c"], creatingWith: 0o700) { made.append($0) }
        #expect(made == ["a", "a/b", "a/b/c"])
        var attributes = stat()
        #expect(stat(folder.path + "/a/b/c", &attributes) == 0 && attributes.st_mode & 0o777 == 0o700)
        made = []
        _ = try walker.folder(["a", "b", "d"], creatingWith: 0o700) { made.append($0) }
        #expect(made == ["a/b/d"])
        #expect(throws: PathWalker.Failure.self) { _ = try walker.folder(["missing", "x"]) }
    }

    @Test("a forgotten walk is walked again: a folder moved away and replaced by a symlink is not reused")
    func forget() throws {
        let folder = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: folder.path + "/a/b", withIntermediateDirectories: true)
        let walker = try Self.walker(folder)
        _ = try walker.folder(["a", "b"])
        try FileManager.default.moveItem(atPath: folder.path + "/a", toPath: folder.path + "/moved")
        try FileManager.default.createSymbolicLink(atPath: folder.path + "/a", withDestinationPath: "/etc")
        walker.forget(under: ["a"])
        #expect(throws: PathWalker.Failure.self) { _ = try walker.folder(["a", "b"]) }
    }

    @Test("the cache stays bounded, and a descriptor handed out stays open after the cache drops it")
    func bounded() throws {
        let folder = try TemporaryDirectory()
        let walker = try Self.walker(folder, maxCached: 4)
        let first = try walker.folder(["kept"], creatingWith: 0o755)
        for index in 0..<20 {
            _ = try walker.folder(["d\(index)"], creatingWith: 0o755)
        }
        // Still open: a file can be made through it.
        let made = openat(first.raw, "file", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        #expect(made >= 0)
        close(made)
        #expect(FileManager.default.fileExists(atPath: folder.path + "/kept/file"))
        #expect(walker.cachedCount <= 4)
    }
}

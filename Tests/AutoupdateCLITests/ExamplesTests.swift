import Foundation
import Testing

/// The README's Swift examples are the `Examples/` programs the build compiles: every example
/// in the README must appear in one of them, line for line (indentation aside), so a README
/// example cannot stop compiling unnoticed.
@Suite("README examples")
struct ExamplesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The README's ```swift blocks, without their `import` lines; a Package.swift fragment is not a program.
    static func readmeExamples() throws -> [[String]] {
        let readme = try String(contentsOf: root.appending(path: "README.md"), encoding: .utf8)
        var blocks: [[String]] = []
        var current: [String]?
        for line in readme.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if current == nil, line == "```swift" {
                current = []
            } else if current != nil, line == "```" {
                blocks.append(current!)
                current = nil
            } else if current != nil {
                current!.append(line)
            }
        }
        return
            blocks
            .filter { $0.first?.hasPrefix("// Package.swift") != true }
            .map { $0.filter { !$0.hasPrefix("import ") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
    }

    static func exampleFiles() throws -> [String: [String]] {
        let folder = root.appending(path: "Examples/AutoupdateExamples")
        var files: [String: [String]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where name.hasSuffix(".swift") {
            let text = try String(contentsOf: folder.appending(path: name), encoding: .utf8)
            files[name] = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        return files
    }

    @Test("every Swift example of the README is compiled in Examples/")
    func readmeExamplesCompile() throws {
        let blocks = try Self.readmeExamples()
        let files = try Self.exampleFiles()
        #expect(blocks.count >= 6)
        for block in blocks {
            let found = files.contains { _, lines in
                lines.indices.contains { start in lines[start...].starts(with: block) }
            }
            #expect(found, "not in Examples/: \(block.prefix(3).joined(separator: " / "))…")
        }
    }
}

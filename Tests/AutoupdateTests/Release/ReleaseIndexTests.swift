@testable import Autoupdate
import AutoupdateTestSupport
import Foundation
import Testing

/// The schema: what publish writes reads back the same, and every way a server can get it wrong
/// is refused whole, naming the field.
@Suite("Release index: schema")
struct ReleaseIndexTests {
    static func sample() throws -> ReleaseIndex {
        ReleaseIndex(
            serial: 1_764_964_800, channels: ["stable", "beta"],
            releases: [
                ReleaseIndex.Release(
                    version: try Version("2.0"), archive: "project.zip", path: "releases/2.0/project.zip", size: 18_211, unpacked: 52_000,
                    sha256: String(repeating: "ab", count: 32), blake2b: String(repeating: "cd", count: 64), notes: "Faster.\nFixes #12.",
                    rollout: 12.5, minimumVersion: try Version("1.5"), required: true,
                    manifest: ReleaseIndex.ManifestReference(
                        path: "releases/2.0/manifest.json", size: 811, sha256: String(repeating: "ef", count: 32))),
                ReleaseIndex.Release(
                    version: try Version("2.1b1"), channel: "beta", archive: "project.tar.gz", path: "releases/2.1b1/project.tar.gz",
                    size: 1, unpacked: 1, sha256: String(repeating: "1", count: 64), blake2b: String(repeating: "2", count: 128),
                    yanked: true, yankReason: "crashes on start"),
            ])
    }

    @Test("an index survives encoding and decoding unchanged, and reads as documented")
    func roundTrip() async throws {
        let index = try Self.sample()
        let bytes = try index.encoded()
        #expect(try ReleaseIndex.decode(bytes) == index)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("\"schema\" : 1"))
        #expect(text.contains("\"path\" : \"releases/2.0/project.zip\""))
        #expect(text.contains("\"path\" : \"releases/2.0/manifest.json\""))
        #expect(text.contains("\"minimumVersion\" : \"1.5\""))
        #expect(text.hasSuffix("}\n"))
        // Python reads it as plain JSON with the same values.
        if ReferencePython.interpreter != nil {
            let folder = try TemporaryDirectory()
            let file = folder.url.appending(path: "release.json")
            try Data(bytes).write(to: file)
            let result = try await ReferencePython.run(
                script:
                    "import json,sys; i=json.load(open(sys.argv[1])); print(i['serial'], i['releases'][0]['rollout'], i['releases'][1]['yankReason'])",
                arguments: [file.path])
            #expect(result.stdout == "1764964800 12.5 crashes on start\n", "\(result.stderr)")
        }
    }

    /// Each case edits the sample's JSON and names what the message must point at.
    static let faults: [(String, String, String)] = [
        ("a newer schema", #""schema" : 1"#, #""schema" : 2"#),
        ("a path leaving the update URL", "releases/2.0/project.zip", "../2.0/project.zip"),
        ("an absolute path", "releases/2.0/project.zip", "/etc/project.zip"),
        ("a path not ending in the archive", "releases/2.0/project.zip", "releases/2.0/other.zip"),
        ("an archive of no known format", #""archive" : "project.zip""#, #""archive" : "project.rar""#),
        ("a channel not listed", #""channel" : "beta""#, #""channel" : "nightly""#),
        ("a rollout above 100", #""rollout" : 12.5"#, #""rollout" : 101"#),
        ("a digest that is not hex", String(repeating: "ab", count: 32), String(repeating: "zz", count: 32)),
        ("a version that is not one", #""version" : "2.0""#, #""version" : "two""#),
        ("a missing size", #""size" : 18211,"#, ""),
        ("a version listed twice", #""version" : "2.1b1""#, #""version" : "2.0.0""#),
        ("a manifest path leaving the update URL", "releases/2.0/manifest.json", "releases/../../manifest.json"),
    ]

    @Test("a hostile or broken index is refused whole, naming the fault", arguments: faults)
    func refused(name: String, original: String, replacement: String) throws {
        let text = String(decoding: try Self.sample().encoded(), as: UTF8.self)
        try #require(text.contains(original), "\(name): the sample must hold \(original)")
        let broken = Array(text.replacingOccurrences(of: original, with: replacement).utf8)
        let error = #expect(throws: AutoupdateError.self, "\(name)") {
            try ReleaseIndex.decode(broken, source: "https://host/release.json")
        }
        #expect(error?.code == .corruptedFile)
        #expect(error?.message.hasPrefix("https://host/release.json is not a valid release index: ") == true, "\(error?.message ?? "")")
    }

    @Test("garbage, an empty file and an oversized one are refused")
    func garbage() {
        for bytes in [Array("not json".utf8), [], Array("[]".utf8), Array(#"{"serial":1}"#.utf8)] {
            #expect(throws: AutoupdateError.self) { try ReleaseIndex.decode(bytes) }
        }
        let huge = [UInt8](repeating: 0x20, count: ReleaseIndex.maximumBytes + 1)
        let error = #expect(throws: AutoupdateError.self) { try ReleaseIndex.decode(huge) }
        #expect(error?.message.contains("larger than") == true)
    }

    static func sampleManifest() throws -> ReleaseManifest {
        ReleaseManifest(
            version: try Version("2.0"), archive: "project.zip",
            files: [
                ReleaseManifest.Entry(path: "bin", type: .directory, mode: 0o755),
                ReleaseManifest.Entry(path: "bin/app", type: .file, mode: 0o755, size: 4242, sha256: String(repeating: "0", count: 64)),
                ReleaseManifest.Entry(path: "current", type: .symlink, mode: 0o777, target: "bin/app"),
            ])
    }

    @Test("a manifest reads back unchanged when its bytes are the ones the index names, and is refused otherwise")
    func manifest() throws {
        let manifest = try Self.sampleManifest()
        let bytes = try manifest.encoded()
        let digest = try SHA256Digest()
        bytes.withUnsafeBytes { digest.update($0) }
        let reference = ReleaseIndex.ManifestReference(
            path: "releases/2.0/manifest.json", size: Int64(bytes.count), sha256: digest.finalize())
        let read = try ReleaseManifest.decode(bytes, matching: reference)
        #expect(read == manifest)
        #expect(read.files[1].permissions == 0o755 && read.files[1].mode == "0755")
        let other = ReleaseIndex.ManifestReference(path: reference.path, size: reference.size, sha256: String(repeating: "1", count: 64))
        let mismatch = #expect(throws: AutoupdateError.self) { try ReleaseManifest.decode(bytes, matching: other) }
        #expect(mismatch?.code == .checksumMismatch)
    }

    static let manifestFaults: [(String, String, String)] = [
        ("an entry leaving the tree", #""path":"bin/app""#, #""path":"../etc/passwd""#),
        ("an absolute entry", #""path":"bin/app""#, #""path":"/bin/app""#),
        ("a file without a digest", #","sha256":"0000000000000000000000000000000000000000000000000000000000000000""#, ""),
        ("a mode that is not octal", #""mode":"0755""#, #""mode":"rwxr-xr-x""#),
        ("a symlink without a target", #""target":"bin/app","#, ""),
        ("a newer schema", #""schema":1"#, #""schema":2"#),
    ]

    @Test("a broken manifest is refused, naming the entry", arguments: manifestFaults)
    func manifestRefused(name: String, original: String, replacement: String) throws {
        let text = String(decoding: try Self.sampleManifest().encoded(), as: UTF8.self)
        try #require(text.contains(original), "\(name): the sample must hold \(original): \(text)")
        let broken = Array(text.replacingOccurrences(of: original, with: replacement).utf8)
        let error = #expect(throws: AutoupdateError.self, "\(name)") { try ReleaseManifest.decode(broken) }
        #expect(error?.code == .corruptedFile, "\(name)")
    }
}

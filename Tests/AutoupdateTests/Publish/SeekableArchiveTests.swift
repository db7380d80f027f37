import Autoupdate
import AutoupdateTestSupport
import AutoupdateTestTraits
import Foundation
import Testing

/// The archive layout publish records for differential updates: every file can be fetched on its
/// own (a zip or tar range, or a gzip member / bzip2 stream of a compressed tar) and decodes to
/// the bytes the manifest's SHA-256 names, read by Python's own zlib, bz2 and tarfile.
@Suite("Publish: seekable archives and the manifest's ranges and members", .ownThread)
struct SeekableArchiveTests {
    /// Reads each file of the manifest from its own range or member, as a client would, and
    /// prints `path sha256` per file, then the number of members.
    private static let script = """
        import bz2, hashlib, io, json, struct, sys, tarfile, zlib
        archive = open(sys.argv[1], 'rb').read()
        manifest = json.load(open(sys.argv[2]))
        out = []
        def tar_files(data):
            with tarfile.open(fileobj=io.BytesIO(data), mode='r:') as t:
                for m in t:
                    if m.isfile():
                        yield m.name, t.extractfile(m).read()
        if manifest['archive'].endswith('.zip'):
            for e in manifest['files']:
                if e['type'] != 'file': continue
                chunk = archive[e['offset']:e['offset'] + e['length']]
                sig, _, _, method, _, _, _, csize, _, n, m = struct.unpack('<IHHHHHIIIHH', chunk[:30])
                assert sig == 0x04034b50
                body = chunk[30 + n + m:30 + n + m + csize]
                data = zlib.decompressobj(-15).decompress(body) if method == 8 else body
                out.append((e['path'], hashlib.sha256(data).hexdigest()))
        elif manifest['archive'].endswith('.tar'):
            for e in manifest['files']:
                if e['type'] != 'file': continue
                for name, data in tar_files(archive[e['offset']:e['offset'] + e['length']]):
                    out.append((name, hashlib.sha256(data).hexdigest()))
        else:
            decode = bz2.decompress if manifest['archive'].endswith('.bz2') else lambda b: zlib.decompress(b, 31)
            for index, member in enumerate(manifest['members']):
                data = decode(archive[member['offset']:member['offset'] + member['size']])
                assert len(data) == member['unpacked'], (index, len(data), member['unpacked'])
                held = {e['path'] for e in manifest['files'] if e['type'] == 'file' and e['member'] == index}
                for name, content in tar_files(data):
                    assert name in held, (name, index)
                    out.append((name, hashlib.sha256(content).hexdigest()))
        for path, digest in sorted(out):
            print(path, digest)
        print(len(manifest.get('members') or []))
        """

    @Test(
        "every file decodes from its own range or member to the manifest's SHA-256",
        arguments: ["project.zip", "project.tar.gz", "project.tar.bz2"])
    func eachFileAlone(archive: String) async throws {
        let work = try TemporaryDirectory()
        let source = work.url.appending(path: "src")
        var tree: [String: UpdateScenario.Content] = [
            "bin/app": .text("#!/bin/sh\necho hi\n", mode: 0o755), "link": .symlink("bin/app"), "empty": .folder(),
        ]
        var random = SeededRandom(seed: 19)
        for index in 0..<60 {
            tree["small/\(index).txt"] = .bytes(
                (0..<Int.random(in: 100...20_000, using: &random)).map { _ in UInt8.random(in: 97...122, using: &random) })
        }
        let block = (0..<16_384).map { _ in UInt8.random(in: 0...255, using: &random) }
        tree["large.bin"] = .bytes(Array((0..<58).map { _ in block }.joined()))  // above bzip2's 900 kB member threshold
        try UpdateScenario.write(tree, to: source)
        let server = work.url.appending(path: "server").path
        let published = try await onDedicatedThread {
            try Publisher.publish(source: source.path, version: try Version("1.0"), to: server, archive: try ArchiveName(archive))
        }
        let reference = try #require(published.index?.release(try Version("1.0"))?.manifest)
        let manifestPath = server + "/" + reference.path
        let manifest = try ReleaseManifest.decode([UInt8](Data(contentsOf: URL(fileURLWithPath: manifestPath))), matching: reference)

        let result = try await ReferencePython.run(script: Self.script, arguments: [published.archive, manifestPath])
        try #require(result.status == 0, "\(result.stderr)")
        var lines = result.stdout.split(separator: "\n").map(String.init)
        let memberCount = Int(lines.removeLast()) ?? -1
        let expected = manifest.files.filter { $0.type == .file }.map { "\($0.path) \($0.sha256!)" }.sorted()
        #expect(lines == expected)
        #expect(lines.count == 62)

        if archive.hasSuffix(".gz") || archive.hasSuffix(".bz2") {
            let members = try #require(manifest.members)
            #expect(memberCount == members.count)
            #expect(members.count >= 2 && members.count < 12, "small files share members: \(members.count)")
            let large = try #require(manifest.files.first { $0.path == "large.bin" }?.member)
            #expect(manifest.files.filter { $0.member == large }.count == 1, "a large file has a member of its own")
            #expect(members.last.map { $0.offset + $0.size } == published.bytes, "the members cover the whole archive")
        } else {
            #expect(manifest.members == nil)
            #expect(manifest.files.allSatisfy { $0.offset != nil && $0.length != nil && $0.member == nil })
        }
    }
}

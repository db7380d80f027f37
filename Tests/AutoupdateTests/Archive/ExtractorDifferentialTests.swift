import Autoupdate
import AutoupdateTestSupport
import AutoupdateTestTraits
import Foundation
import Testing

/// Archives made by real tools, extracted by us and by the tool that made them (or the format's
/// reference: GNU tar, unzip): the two trees must be the same, file by file.
@Suite("Extractor: same trees as the reference tools", .ownThread)
struct ExtractorDifferentialTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let label: String
        let archive: String
        /// Makes `archive` from `src/` (run in the work folder).
        let create: String
        /// Extracts `archive` into `ref/`.
        let reference: String
        var testDescription: String { label }
    }

    static let python = "${AUTOUPDATE_PYTHON:-python3}"
    static let cases: [Case] = [
        Case(
            label: "GNU tar, gnu format, gzip", archive: "a.tar.gz",
            create: "tar --format=gnu -czf a.tar.gz -C src .", reference: "tar -xzf a.tar.gz -C ref"),
        Case(
            label: "GNU tar, posix (pax) format, bzip2", archive: "a.tar.bz2",
            create: "tar --format=posix -cjf a.tar.bz2 -C src .", reference: "tar -xjf a.tar.bz2 -C ref"),
        Case(
            label: "GNU tar, posix, uncompressed", archive: "a.tar",
            create: "tar --format=posix -cf a.tar -C src .", reference: "tar -xf a.tar -C ref"),
        Case(
            label: "GNU tar, member names without ./", archive: "b.tar.gz",
            create: "cd src && tar -czf ../b.tar.gz *", reference: "tar -xzf b.tar.gz -C ref"),
        Case(
            label: "bsdtar, gzip", archive: "a.tgz",
            create: "bsdtar -czf a.tgz -C src .", reference: "tar -xzf a.tgz -C ref"),
        Case(
            label: "bsdtar, zip", archive: "a.zip",
            create: "bsdtar --format zip -cf a.zip -C src .", reference: "unzip -q a.zip -d ref"),
        Case(
            label: "Python tarfile, pax, gzip", archive: "py.tar.gz",
            create: "\(python) -c \"import tarfile; t = tarfile.open('py.tar.gz', 'w:gz'); t.add('src', arcname='.'); t.close()\"",
            reference: "tar -xzf py.tar.gz -C ref"),
        Case(
            label: "Python zipfile", archive: "py.zip",
            create: "cd src && \(python) -m zipfile -c ../py.zip .", reference: "unzip -q py.zip -d ref"),
        Case(
            label: "Python zipfile to a pipe (data descriptors, stored entries spooled)", archive: "pipe.zip",
            create:
                "\(python) -c \"import zipfile, sys, os\nz = zipfile.ZipFile(sys.stdout.buffer, 'w')\nfor d, _, fs in os.walk('src'):\n  for f in fs:\n    p = os.path.join(d, f)\n    if not os.path.islink(p): z.write(p, os.path.relpath(p, 'src'), compress_type=zipfile.ZIP_STORED if f.endswith('.bin') else zipfile.ZIP_DEFLATED)\nz.close()\" | cat > pipe.zip",
            reference: "unzip -q pipe.zip -d ref"),
        Case(
            label: "Info-ZIP zip, deflate", archive: "iz.zip",
            create: "cd src && zip -qry ../iz.zip .", reference: "unzip -q iz.zip -d ref"),
        Case(
            label: "Info-ZIP zip, stored", archive: "store.zip",
            create: "cd src && zip -qry0 ../store.zip .", reference: "unzip -q store.zip -d ref"),
        Case(
            label: "Info-ZIP zip to a pipe (data descriptors; links followed)", archive: "pipe-iz.zip",
            create: "cd src && zip -qr - . | cat > ../pipe-iz.zip", reference: "unzip -q pipe-iz.zip -d ref"),
        Case(
            label: "Info-ZIP zip, zip64 (-fz)", archive: "z64.zip",
            create: "cd src && zip -qry -fz ../z64.zip .", reference: "unzip -q z64.zip -d ref"),
        Case(
            label: "Info-ZIP zip of a file streamed from stdin (zip64)", archive: "stdin.zip",
            create: "zip -q stdin.zip - < src/lib/core/data.bin", reference: "unzip -q stdin.zip -d ref"),
    ]

    @Test("extracts what the reference tool extracts", arguments: cases)
    func sameTree(_ testCase: Case) async throws {
        let work = try TemporaryDirectory()
        let source = work.url.appending(path: "src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try SampleTree.write(to: source)
        try FileManager.default.createDirectory(at: work.url.appending(path: "ref"), withIntermediateDirectories: true)
        try await shell(testCase.create, in: work.url)
        try await shell(testCase.reference, in: work.url)

        let report = try await Extractor().extract(
            file: work.url.appending(path: testCase.archive).path, to: work.url.appending(path: "ours").path)
        let ours = try TreeSnapshot(work.url.appending(path: "ours"))
        let reference = try TreeSnapshot(work.url.appending(path: "ref"))
        let differences = ours.differences(from: reference)
        #expect(differences.isEmpty, "\(testCase.label):\n\(differences.joined(separator: "\n"))")
        #expect(report.files >= 1 && report.bytes > 0)
        #expect(!ours.nodes.isEmpty)
    }

    @Test("a tree made by tar, extracted by us, equals the source (with and without early write-back)", arguments: [false, true])
    func roundTrip(startsWriteBack: Bool) async throws {
        let work = try TemporaryDirectory()
        let source = work.url.appending(path: "src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try SampleTree.write(to: source)
        try await shell("tar --format=posix -czf a.tgz -C src .", in: work.url)
        let extractor = Extractor(configuration: ExtractionConfiguration(startsWriteBack: startsWriteBack))
        let report = try await extractor.extract(file: work.url.appending(path: "a.tgz").path, to: work.url.appending(path: "out").path)
        let differences = try TreeSnapshot(work.url.appending(path: "out")).differences(from: TreeSnapshot(source))
        #expect(differences.isEmpty, "\(differences.joined(separator: "\n"))")
        #expect(report.symlinks == 3)
        #expect(report.hardlinks == 1)
        let hardlink = try FileManager.default.attributesOfItem(atPath: work.url.appending(path: "out/README.txt").path)
        #expect((hardlink[.referenceCount] as? NSNumber)?.intValue == 2, "the hard link is a link, not a copy")
    }
}

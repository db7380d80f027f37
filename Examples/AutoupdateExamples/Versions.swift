import Autoupdate

/// Versions, update URLs and archive names, as the seed reads them.
func versions() async throws {
    let installed = try Version("1.0-RC1")   // normalized: 1.0rc1
    let latest = try Version("1.0")
    if installed < latest { print("update from \(installed) to \(latest)") }

    let base = try UpdateURL("http://example.com/app?x=1")   // https://example.com/app/
    let archive = try ArchiveName("project.tar.gz")           // .tarGzip
    print(base, archive)
}

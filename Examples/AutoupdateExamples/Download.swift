import Autoupdate
import Foundation

/// Streaming a download, and polling a small file with conditional requests.
func download() async throws {
    let archiveURL = URL(string: "https://example.com/app/project.zip")!
    let versionURL = URL(string: "https://example.com/app/version.txt")!
    let output = try FileHandle(forWritingTo: URL(fileURLWithPath: "/dev/null"))
    var lastValidator: HTTPValidator?

    let downloader = Downloader(configuration: DownloadConfiguration(caFile: "/etc/myapp/ca.pem"))
    for try await chunk in downloader.bytes(from: archiveURL) {
        try output.write(contentsOf: chunk.bytes)          // chunk.progress: bytes, total, rate, ETA
    }
    switch try await downloader.fetch(versionURL, validator: lastValidator) {
    case .notModified: break                               // a 304: polling costs the server nothing
    case .modified(let body, let validator): lastValidator = validator; print(body.count)
    }
    _ = lastValidator
}

import Autoupdate
import AutoupdateTestSupport
import Foundation
import Testing

/// `make dist`'s Debian package on this machine: installed with dpkg, run where the Swift
/// toolchain is hidden (a mount namespace with an empty folder over it), removed cleanly.
/// `make test` builds the package first and names it in `AUTOUPDATE_DEB`; it needs root (dpkg).
@Suite("The Debian package (make dist)")
struct DebianPackageTests {
    static let deb = ProcessInfo.processInfo.environment["AUTOUPDATE_DEB"].flatMap { $0.isEmpty ? nil : $0 }

    /// The toolchain's root folder (`/opt/swift` for `/opt/swift/usr/bin/swift`, a link to
    /// `swift-driver` there).
    static func toolchainRoot() throws -> String {
        let which = try ChildProcess.runBlocking("/bin/sh", ["-c", "readlink -f \"$(command -v swift)\""])
        let swift = which.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let bin = try #require(swift.range(of: "/usr/bin/", options: .backwards), "no swift on PATH (\(swift))")
        return String(swift[..<bin.lowerBound])
    }

    @Test(
        "dpkg -i installs it; with the toolchain hidden it runs --version and a real update; dpkg -r removes every file",
        .enabled(if: deb != nil && getuid() == 0, "make test builds the package (AUTOUPDATE_DEB) and runs as root"))
    func installRunRemove() async throws {
        let deb = try #require(Self.deb)
        let info = try await ChildProcess.run("/usr/bin/dpkg-deb", ["--field", deb, "Package", "Depends"])
        #expect(info.status == 0 && info.stdout.contains("Package: autoupdate"), "\(info.stderr)")
        for needed in ["libcurl4", "zlib1g", "libbz2-1.0", "libsodium23", "libssl3"] {
            #expect(info.stdout.contains(needed + " (>= "), "Depends lacks \(needed): \(info.stdout)")
        }
        #expect(!info.stdout.lowercased().contains("swift"), "\(info.stdout)")

        let installed = try await ChildProcess.run("/usr/bin/dpkg", ["-i", deb])
        try #require(installed.status == 0, "\(installed.stdout)\(installed.stderr)")
        let files = try await ChildProcess.run("/usr/bin/dpkg", ["-L", "autoupdate"]).stdout.split(separator: "\n").map(String.init)
        for expected in [
            "/usr/bin/autoupdate", "/usr/share/man/man1/autoupdate.1.gz", "/usr/share/man/man1/autoupdate.watch.1.gz",
            "/usr/share/bash-completion/completions/autoupdate", "/usr/share/doc/autoupdate/examples/myapp.service",
        ] {
            #expect(files.contains(expected), "the package lacks \(expected)")
        }

        let scenario = try UpdateScenario()
        try scenario.publish(["bin/app": .text("#!/bin/sh\necho 1.0\n", mode: 0o755)], version: "1.0")
        let toolchain = try Self.toolchainRoot()
        try await TestHTTPSServer.with(root: scenario.serverFolder) { server in
            // An empty folder over the toolchain, in a mount namespace of this command only.
            let script = """
                mount -t tmpfs none '\(toolchain)' || exit 90
                test ! -e '\(toolchain)/usr/bin/swift' || exit 91
                ldd /usr/bin/autoupdate | grep -E 'not found|swift' && exit 92
                /usr/bin/autoupdate --version || exit 93
                exec /usr/bin/autoupdate update --url '\(server.baseURL.absoluteString)' --dir '\(scenario.appFolder.path)' \
                  --ca-file '\(TestPKI.caFile)'
                """
            let hidden = try await ChildProcess.run("/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c", script])
            #expect(hidden.status == 0, "exit \(hidden.status): \(hidden.stdout)\(hidden.stderr)")
            #expect(hidden.stdout.hasPrefix("autoupdate "), "\(hidden.stdout)")
        }
        #expect(scenario.folder.readVersionDoc().value?.description == "1.0", "the update installed nothing")
        #expect(FileManager.default.fileExists(atPath: toolchain + "/usr/bin/swift"), "the toolchain was hidden in the namespace only")

        let removed = try await ChildProcess.run("/usr/bin/dpkg", ["-r", "autoupdate"])
        #expect(removed.status == 0, "\(removed.stdout)\(removed.stderr)")
        for file in files where !file.hasSuffix("/") {
            var info = stat()
            // Folders the package shared with others (/usr/bin) stay; its own files go.
            if lstat(file, &info) == 0, info.st_mode & S_IFMT != S_IFDIR {
                Issue.record("\(file) is left after dpkg -r")
            }
        }
        #expect(try await ChildProcess.run("/usr/bin/dpkg", ["-s", "autoupdate"]).status != 0, "still installed")
    }
}

import Autoupdate
import Foundation
import Testing

@Suite("UpdateURL: the seed's URL rules")
struct UpdateURLTests {
    @Test(
        "normalizes to an https folder URL",
        arguments: [
            ("example.com/app", "https://example.com/app/"),
            ("http://example.com/app", "https://example.com/app/"),
            ("HTTP://example.com/app/", "https://example.com/app/"),
            ("HTTPS://example.com", "https://example.com/"),
            ("https://example.com/app;params?query=1#fragment", "https://example.com/app/"),
            ("https://example.com/a;x/b;y", "https://example.com/a;x/b/"),
            ("https://example.com/app/?x#y", "https://example.com/app/"),
            ("localhost:8443/app", "https://localhost:8443/app/"),
            ("127.0.0.1:8443", "https://127.0.0.1:8443/"),
            ("https://[::1]:8443/x", "https://[::1]:8443/x/"),
            ("https://host:65535/", "https://host:65535/"), ("https://host:1/a", "https://host:1/a/"),
            ("//cdn.example.com/app", "https://cdn.example.com/app/"),
            ("  https://example.com/app  ", "https://example.com/app/"),
            ("https://example.com/my%20app", "https://example.com/my%20app/"),
        ])
    func normalizes(input: String, expected: String) throws {
        #expect(try UpdateURL(input).description == expected)
    }

    @Test(
        "refuses what cannot be an HTTPS folder",
        arguments: [
            ("", "empty"), ("   ", "empty"),
            ("ftp://example.com/app", "scheme 'ftp'"), ("file:///etc/app", "scheme 'file'"),
            ("mailto:someone@example.com", "scheme 'mailto'"), ("javascript:alert(1)", "scheme 'javascript'"),
            ("https://", "no host"), ("https:///path", "no host"),
            ("https://user:secret@example.com/", "credentials"), ("https://user@example.com/", "credentials"),
            ("https://exa mple.com/", "not a valid URL"),
            ("https://host:99999/", "port 99999"), ("https://host:0/", "port 0"), ("host:65536/app", "port 65536"),
            ("https://host:12ab/", "not a valid URL"), ("https://[::1]:70000/", "port 70000"),
        ])
    func refuses(input: String, reason: String) {
        #expect {
            try UpdateURL(input)
        } throws: { error in
            guard let error = error as? AutoupdateError else { return false }
            return error.code == .invalidURL && error.message.contains(reason)
        }
    }

    @Test("credentials never appear in the error message")
    func credentialsNotEchoed() {
        do {
            _ = try UpdateURL("https://user:hunter2@example.com/")
            Issue.record("credentials accepted")
        } catch {
            #expect(!String(describing: error).contains("hunter2"))
        }
    }

    @Test("appends file names, percent-encoding them")
    func appending() throws {
        let base = try UpdateURL("example.com/app")
        #expect(base.appending("version.txt").absoluteString == "https://example.com/app/version.txt")
        #expect(base.appending("my app.zip").absoluteString == "https://example.com/app/my%20app.zip")
    }
}

@Suite("ArchiveName: the seed's newfiles")
struct ArchiveNameTests {
    @Test(
        "accepts a single .zip, .tar.gz or .tar.bz2 name",
        arguments: [
            ("project.zip", ArchiveFormat.zip), ("app-2.0.tar.gz", .tarGzip), ("APP.TAR.BZ2", .tarBzip2),
            ("my app.zip", .zip), (".hidden.zip", .zip),
        ])
    func accepts(name: String, format: ArchiveFormat) throws {
        let archive = try ArchiveName(name)
        #expect(archive.name == name)
        #expect(archive.format == format)
    }

    @Test(
        "refuses paths, other formats and control characters",
        arguments: [
            "", ".", "..", "dir/project.zip", "../project.zip", "..\\project.zip", "/project.zip",
            "project.rar", "project.tar", "project.tgz", "project", ".zip", ".tar.gz", "a\n.zip", "a\u{7F}.zip",
        ])
    func refuses(name: String) {
        #expect {
            try ArchiveName(name)
        } throws: { error in
            (error as? AutoupdateError)?.code == .invalidArgument
        }
    }

    @Test("the default is the seed's project.zip")
    func defaultName() {
        #expect(ArchiveName.default.name == "project.zip")
        #expect(ArchiveName.default.format == .zip)
    }
}

@Suite("AppFolder: paths stay inside the folder")
struct AppFolderPathTests {
    let folder = AppFolder(path: "/opt/myapp")

    @Test(
        "resolves paths inside the folder",
        arguments: [
            ("bin/app", "/opt/myapp/bin/app"), ("./bin/../app", "/opt/myapp/app"), ("app.sh", "/opt/myapp/app.sh"),
            ("/opt/myapp/bin/app", "/opt/myapp/bin/app"), ("/opt/myapp/x/../bin/app", "/opt/myapp/bin/app"),
        ])
    func resolves(filepath: String, expected: String) throws {
        #expect(try folder.resolve(filepath) == expected)
    }

    @Test(
        "refuses paths that leave the folder or name it",
        arguments: [
            "", ".", "./", "../app", "bin/../../app", "/etc/passwd", "/opt/myapp2/app", "/opt/myapp/../x", "a\0b",
        ])
    func refuses(filepath: String) {
        #expect {
            try folder.resolve(filepath)
        } throws: { error in
            (error as? AutoupdateError)?.code == .invalidArgument
        }
    }

    @Test("a relative folder is taken from the current directory")
    func relativeFolder() {
        let relative = AppFolder(path: "some/app/../app")
        #expect(relative.path.hasPrefix("/"))
        #expect(relative.path.hasSuffix("/some/app"))
    }
}

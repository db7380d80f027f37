public import Foundation

/// Where SwiftPM put the binaries of this build (beside the test bundle).
public enum BuiltProducts {
    public static let directory: URL = {
        // The test runner is `.build/<config>/<package>PackageTests.xctest`; its folder holds the products.
        let executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: executable).deletingLastPathComponent()
    }()

    /// The `autoupdate` CLI of this build, or the one `AUTOUPDATE_CLI` names (to run the CLI tests
    /// against `make dist`'s self-contained binary; the tests that kill at a named install step
    /// need a debug build).
    public static var cli: String {
        ProcessInfo.processInfo.environment["AUTOUPDATE_CLI"].flatMap { $0.isEmpty ? nil : $0 }
            ?? directory.appending(path: "autoupdate").path
    }
}

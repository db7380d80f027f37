// The README's and the documentation's Swift examples, whole, so that the build compiles them
// and they cannot rot (a test checks that every README example is in one of these files).
//
//     swift run AutoupdateExamples <name>     (names: see `examples` below)
//
// They talk to example.com: run them against your own server to see them work.

import Foundation

let examples: [String: () async throws -> Void] = [
    "quickstart": quickstart,
    "getting-started": gettingStarted,
    "inside-the-app": insideTheApp,
    "versions": versions,
    "update-installed-app": updateInstalledApp,
    "download": download,
    "watch-service": watchService,
    "releases": releases,
]

guard CommandLine.arguments.count == 2, let example = examples[CommandLine.arguments[1]] else {
    print("usage: AutoupdateExamples <\(examples.keys.sorted().joined(separator: "|"))>")
    exit(2)
}
try await example()

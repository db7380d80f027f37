import ArgumentParser
import Autoupdate
import Logging

struct RecoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Finish or undo an install that was interrupted (a crash, a power cut).",
        discussion: """
            Every update runs this first; run it on its own to put an app folder right without \
            updating. An install that had not committed is rolled back to the old version; one \
            that had is finished.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "The app folder.")
    var dir: String = "."

    func run() async throws {
        global.bootstrapLogging()
        try await Failure.reporting {
            let folder = AppFolder(path: dir)
            // Recovery needs no server: the URL is never used.
            let updater = Updater(folder: folder, url: try UpdateURL("https://localhost/"), logger: Logger(label: "autoupdate"))
            switch try await updater.recover() {
            case .nothingToDo: print("nothing to recover")
            case .rolledBack(let version): print("rolled back the interrupted install of \(version)")
            case .rolledForward(let version): print("finished the interrupted install of \(version)")
            case .failedButWhole(let reason): print("recovery failed, the installed version is whole: \(reason)")
            }
        }
    }
}

import Autoupdate
import Testing

@Suite("AutoupdateError")
struct AutoupdateErrorTests {
    @Test("carries code, message, cause chain and location")
    func describes() {
        let cause = AutoupdateError(.corruptArchive, "gzip stream truncated")
        let error = AutoupdateError(.install, "installing project.zip failed", underlying: cause)
        #expect(error.code == .install)
        #expect(error.description == "installing project.zip failed")
        #expect(error.debugDescription.contains("[install] installing project.zip failed"))
        #expect(error.debugDescription.contains("caused by [corruptArchive] gzip stream truncated"))
        #expect(error.debugDescription.contains("ErrorTests.swift"))
        #expect(error.adding(context: "update").message == "update: installing project.zip failed")
        #expect(error.adding(context: "update").code == .install)
    }
}

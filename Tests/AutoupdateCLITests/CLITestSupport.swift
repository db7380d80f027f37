import AutoupdateTestSupport

/// Runs the built `autoupdate` binary.
func autoupdate(_ arguments: String...) throws -> ChildProcess.Result {
    try ChildProcess.run(BuiltProducts.cli, arguments)
}

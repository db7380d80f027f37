import AutoupdateTestSupport

/// Runs the built `autoupdate` binary.
func autoupdate(_ arguments: String...) async throws -> ChildProcess.Result {
    try await ChildProcess.run(BuiltProducts.cli, arguments)
}

/// Runs the built `autoupdate` binary with an argument list.
func autoupdate(_ arguments: [String]) async throws -> ChildProcess.Result {
    try await ChildProcess.run(BuiltProducts.cli, arguments)
}

public import Logging

extension Logger {
    /// The metadata key that marks a record a person should see: a condition the library met and
    /// handled (a corrupted local file ignored, a clean-up that failed, an interrupted install
    /// finished) that no return value or event reports.
    ///
    /// The library logs at `info` and below only; how loud such a record is, is the
    /// application's choice (the `autoupdate` command shows them as warnings).
    public static let attentionKey = "autoupdate.attention"

    /// Logs at `info`, marked with ``attentionKey``.
    func attention(
        _ message: @autoclosure () -> Message, metadata: @autoclosure () -> Metadata? = nil,
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        var marked = metadata() ?? [:]
        marked[Self.attentionKey] = "true"
        info(message(), metadata: marked, file: file, function: function, line: line)
    }
}

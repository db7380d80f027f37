/// Quotes untrusted text (a server's reply, an archive entry's name) for an error message:
/// single quotes, control characters escaped so they cannot rewrite a terminal line, and long
/// text shortened so a hostile input cannot flood a log.
func quoted(_ text: some StringProtocol, limit: Int = 160) -> String {
    let shortened = text.count > limit ? text.prefix(limit) + "…" : Substring(text)
    var result = "'"
    for scalar in shortened.unicodeScalars {
        switch scalar {
        case "'": result += "\\'"
        case "\\": result += "\\\\"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value):
            result += scalar.escaped(asASCII: true)
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "'"
}

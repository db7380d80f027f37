#if canImport(FoundationEssentials)
package import FoundationEssentials
#else
package import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// What Foundation's formatting gave us, for the text we print and parse, so that the library and
// the command build on FoundationEssentials alone (no ICU: a static binary a third the size).
// `package`: the command uses them too.

/// `value` with exactly `places` decimals, rounded half away from zero (`String(format: "%.1f")`).
package func decimal(_ value: Double, places: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    let scale = pow(10, Double(places))
    let scaled = (abs(value) * scale).rounded()
    guard scaled < 9e18 else { return "\(value)" }
    let units = Int64(scaled)
    let whole = units / Int64(scale)
    var text = (value < 0 && units != 0 ? "-" : "") + String(whole)
    if places > 0 {
        let fraction = String(units % Int64(scale))
        text += "." + String(repeating: "0", count: places - fraction.count) + fraction
    }
    return text
}

/// A number as people write it: `5`, `12.5` (no trailing zeros; `Double.formatted()` for our percentages).
package func plainNumber(_ value: Double) -> String {
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    var text = decimal(value, places: 6)
    while text.hasSuffix("0") { text.removeLast() }
    if text.hasSuffix(".") { text.removeLast() }
    return text
}

/// Writes `text` on stderr, whole (`FileHandle.standardError.write`).
package func writeStandardError(_ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        if written < 0 {
            if errno == EINTR { continue }
            return
        }
        bytes = bytes.dropFirst(written)
    }
}

extension StringProtocol {
    /// Without the leading and trailing white space (Unicode's, as Foundation's
    /// `.whitespaces`), and with `newlines` also without line breaks (`.whitespacesAndNewlines`).
    package func trimmingWhitespace(andNewlines newlines: Bool = false) -> String {
        func isTrimmed(_ character: Character) -> Bool {
            character.isWhitespace && (newlines || !character.isNewline)
        }
        guard let first = firstIndex(where: { !isTrimmed($0) }), let last = lastIndex(where: { !isTrimmed($0) }) else { return "" }
        return String(self[first...last])
    }

    /// The last component of a slash-separated path (`NSString.lastPathComponent` for the paths
    /// we make: no trailing slash).
    package var lastPathComponent: String {
        guard let slash = lastIndex(of: "/") else { return String(self) }
        return String(self[index(after: slash)...])
    }

    /// The path without its last component (`NSString.deletingLastPathComponent`): "" for a
    /// bare name, "/" for a component of the root.
    package var deletingLastPathComponent: String {
        guard let slash = lastIndex(of: "/") else { return "" }
        return slash == startIndex ? "/" : String(self[..<slash])
    }
}

extension BinaryInteger {
    /// Lowercase hexadecimal, zero-padded to `width` digits (`String(format: "%02x")`).
    package func hex(width: Int) -> String {
        let digits = String(self, radix: 16)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

extension Date {
    /// ISO 8601 in UTC to the second ("2026-12-06T02:04:56Z"), as `ISO8601DateFormatter` writes it.
    package var iso8601: String {
        formatted(Date.ISO8601FormatStyle())
    }
}

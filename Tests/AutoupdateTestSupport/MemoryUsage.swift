import Foundation

/// This process's memory, from /proc/self/status.
public enum MemoryUsage {
    /// The resident set size now (`VmRSS`), in KiB.
    public static func residentKiB() -> Int { field("VmRSS") }

    /// The peak resident set size so far (`VmHWM`), in KiB.
    public static func peakResidentKiB() -> Int { field("VmHWM") }

    private static func field(_ name: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        return 0
    }
}

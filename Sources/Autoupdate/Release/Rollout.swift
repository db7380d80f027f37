/// Staged rollouts: which installs see a release that is offered to `percent` of them.
///
/// An install is in a release's rollout when the first 8 bytes of SHA-256(install id ‖ version),
/// read as a big-endian integer, are below `percent`/100 of 2⁶⁴. The draw depends only on the
/// install and the version, so it is stable across checks, independent between releases, and
/// raising a release's percentage keeps every install that was already in.
enum Rollout {
    /// Whether the install with `installID` takes part in `version`'s rollout at `percent`.
    ///
    /// - Parameter percent: 0 (halted: nobody) to 100 (everybody); out-of-range values are clamped.
    static func includes(installID: String, version: Version, percent: Double) -> Bool {
        guard percent.isFinite, percent > 0 else { return false }
        guard percent < 100 else { return true }
        return draw(installID: installID, version: version) < threshold(percent)
    }

    /// The install's draw for `version`: uniform over 0..<2⁶⁴.
    static func draw(installID: String, version: Version) -> UInt64 {
        // A digest that cannot start is out of memory; no draw is then 0 (in every rollout) would
        // be wrong, so the highest (in none but 100 %) is the safe answer.
        guard let digest = try? SHA256Digest() else { return .max }
        Array(installID.utf8).withUnsafeBytes { digest.update($0) }
        Array(version.description.utf8).withUnsafeBytes { digest.update($0) }
        return digest.finalizeBytes().prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// `percent`/100 of 2⁶⁴, for 0 < percent < 100.
    private static func threshold(_ percent: Double) -> UInt64 {
        let value = (percent / 100 * 18_446_744_073_709_551_616.0).rounded(.down)
        // Just below 100 %, the product may round up to 2⁶⁴ itself, which no UInt64 holds.
        return value < 18_446_744_073_709_551_616.0 ? UInt64(value) : .max
    }
}

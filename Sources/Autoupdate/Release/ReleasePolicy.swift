/// Which release of an index an install takes, and why: every client rule of the release
/// manifest in one pure function, so that it is tested table by table without a server.
///
/// The rules, in order of precedence:
/// 1. **Channel**: releases on the client's channel and every more stable one (earlier in the
///    index's `channels`) are visible; an unknown channel sees the most stable one only.
/// 2. **Yanked** and locally **bad** versions are never taken.
/// 3. **Pin**: releases outside the specifier set are ignored (`packaging`'s `filter`, with
///    pre-releases allowed on any channel but the most stable one).
/// 4. **Rollout**: a release is offered only to installs in its rollout, except that one whose
///    minimum version is above the installed version is offered to every install (unless halted
///    at 0 %).
/// 5. **Floor**: nothing below the highest version ever installed here.
/// 6. The highest remaining version above the installed one, but never past a **required**
///    release: an install below a required release takes it first (or waits for it).
/// 7. **Yank**: an install running a yanked version moves to the highest remaining version, even a
///    lower one, only when the index is trusted for that (signed by a pinned key, not older than
///    any seen); the floor does not apply to that move.
/// The update is **mandatory** (cannot be declined or deferred) when it is a required release,
/// moves off a yanked version, or a visible release's minimum version is above the installed one.
public struct ReleasePolicy: Sendable, Hashable {
    /// Why the decision is what it is (the `why` of `check --json`).
    public enum Reason: String, Sendable, Hashable, Codable {
        /// A newer release is offered.
        case newer = "newer"
        /// The installed version is below a release's minimum version: it must update.
        case minimum = "minimum"
        /// A required release lies between the installed version and the newest one: it comes first.
        case required = "required"
        /// The installed version was yanked: moving to the newest version still offered.
        case yanked = "yanked"
        /// Nothing newer.
        case upToDate = "up-to-date"
        /// A newer release exists, but this install is not (yet) in its rollout.
        case outsideRollout = "outside-rollout"
        /// A newer release exists, but the pin excludes it.
        case pinnedOut = "pinned-out"
        /// Newer releases exist, but every one was yanked or failed here before.
        case withdrawn = "withdrawn"
    }

    /// The outcome.
    public struct Decision: Sendable, Hashable {
        /// The release to install, or `nil`.
        public let candidate: ReleaseIndex.Release?
        public let reason: Reason
        /// The install cannot be declined (`run --update ask`) or deferred (`watch`).
        public let mandatory: Bool
        /// A move to a lower version (off a yanked one).
        public var isDowngrade: Bool {
            guard let candidate, let installed else { return false }
            return candidate.version < installed
        }
        /// The installed version the decision was made for.
        public let installed: Version?
        /// The channel the client asked for, and the one it was treated as.
        public let channel: String
        /// Whether this install is in the rollout of the newest visible release (`nil` without one).
        public let inNewestRollout: Bool?
    }

    /// The client's channel (`stable` by default).
    public var channel: String
    /// The client's pin, if any.
    public var pin: VersionSpecifierSet?
    /// The install's id, for rollouts.
    public var installID: String

    public init(channel: String = "stable", pin: VersionSpecifierSet? = nil, installID: String) {
        self.channel = channel
        self.pin = pin
        self.installID = installID
    }

    /// Decides for an install.
    ///
    /// - Parameters:
    ///   - index: The server's index.
    ///   - installed: The installed version (`nil`: nothing installed).
    ///   - floor: The highest version ever installed here (rollback protection).
    ///   - bad: Versions that failed their health check here.
    ///   - trustedForDowngrade: The index is signed by a pinned key and not older than any seen.
    public func decide(
        index: ReleaseIndex, installed: Version?, floor: Version? = nil, bad: Set<Version> = [], trustedForDowngrade: Bool = false
    ) -> Decision {
        let rank = index.channels.firstIndex(of: channel) ?? 0
        let visible = index.releases.filter { (index.channels.firstIndex(of: $0.channel) ?? .max) <= rank }
        let offered = visible.filter { !$0.yanked && !bad.contains($0.version) }
        let pinned = pin.map { $0.filter(offered, preReleases: rank > 0 ? true : nil, version: \.version) } ?? offered
        let current = installed ?? Version.zero
        let mustUpdate = offered.contains { release in release.minimumVersion.map { current < $0 } ?? false }
        let reached = pinned.filter { release in
            inRollout(release) || (release.rollout > 0 && (release.minimumVersion.map { current < $0 } ?? false))
        }
        let newestVisible = visible.filter { !$0.yanked }.max { $0.version < $1.version }
        let decision = { (candidate: ReleaseIndex.Release?, reason: Reason, mandatory: Bool) in
            Decision(
                candidate: candidate, reason: reason, mandatory: candidate != nil && mandatory, installed: installed, channel: channel,
                inNewestRollout: newestVisible.map(inRollout))
        }

        if let installed, index.releases.contains(where: { $0.version == installed && $0.yanked }), trustedForDowngrade,
            let target = reached.max(by: { $0.version < $1.version }), target.version != installed
        {
            return decision(target, .yanked, true)
        }

        let newer = reached.filter { release in release.version > current && floor.map { release.version >= $0 } ?? true }
        guard var target = newer.max(by: { $0.version < $1.version }) else {
            return decision(nil, whyNothing(visible: visible, offered: offered, pinned: pinned, above: current, floor: floor), false)
        }
        var reason: Reason = mustUpdate ? .minimum : .newer
        let gates = pinned.filter { $0.required && $0.version > current && $0.version < target.version }
        if let gate = gates.min(by: { $0.version < $1.version }) {
            if reached.contains(gate) {
                target = gate
                reason = .required
            } else if let below = newer.filter({ $0.version < gate.version }).max(by: { $0.version < $1.version }) {
                target = below
            } else {
                return decision(nil, .outsideRollout, false)
            }
        }
        return decision(target, reason, mustUpdate || target.required)
    }

    /// Whether this install is in a release's rollout.
    public func inRollout(_ release: ReleaseIndex.Release) -> Bool {
        Rollout.includes(installID: installID, version: release.version, percent: release.rollout)
    }

    private func whyNothing(
        visible: [ReleaseIndex.Release], offered: [ReleaseIndex.Release], pinned: [ReleaseIndex.Release], above current: Version,
        floor: Version?
    ) -> Reason {
        let wanted = { (release: ReleaseIndex.Release) in release.version > current && floor.map { release.version >= $0 } ?? true }
        if pinned.contains(where: wanted) { return .outsideRollout }
        if offered.contains(where: wanted) { return .pinnedOut }
        if visible.contains(where: { $0.version > current }) { return .withdrawn }
        return .upToDate
    }
}

import Glibc
import OCI

/// Holds one buildpack to what is left of the disk budget. Its writable trees (the workspace and
/// its own layers directory) are measured in allocated blocks before it runs, while it runs (a
/// walk at most every `pollMicroseconds`, and never more than a tenth of the time) and after.
/// Between two walks it can write `pollMicroseconds` × its write rate beyond the budget; no one
/// file can pass the budget at all (`DiskGuard.maxFileSize`).
final class DiskWatch: @unchecked Sendable {
    static let pollMicroseconds: Int64 = 200_000
    /// The key of the workspace among the layers directory's entries (which never hold a `/`).
    static let workspace = "/workspace"

    let account: DiskAccount
    let workspacePath: String
    let layersPath: String
    /// What was left of the budget when the buildpack started.
    let allowance: UInt64
    private let before: [String: TreeUsage]
    // Touched by the supervisor's thread while the buildpack runs, by the builder after.
    private var fired = false
    private var nextWalk: Int64 = 0

    init(account: DiskAccount, workspace: String, layers: String) {
        self.account = account
        workspacePath = workspace
        layersPath = layers
        allowance = account.remaining
        before = Self.measure(layers: layers, workspace: workspace)
    }

    var guardForBuildpack: DiskGuard {
        DiskGuard(maxFileSize: allowance, pollMicroseconds: Self.pollMicroseconds, exceeded: { [self] in exceeded() })
    }

    private func measure() -> [String: TreeUsage] { Self.measure(layers: layersPath, workspace: workspacePath) }

    private static func measure(layers: String, workspace: String) -> [String: TreeUsage] {
        var usage = TreeUsage.perEntry(of: layers) ?? [:]
        usage[Self.workspace] = TreeUsage.of(workspace)
        return usage
    }

    private func growth(_ after: [String: TreeUsage]) -> Int64 {
        Int64(after.values.reduce(0) { $0 + $1.bytes }) - Int64(before.values.reduce(0) { $0 + $1.bytes })
    }

    private func exceeded() -> Bool {
        let start = Self.now()
        guard !fired, start >= nextWalk else { return fired }
        fired = growth(measure()) > Int64(allowance)
        nextWalk = Self.now() + 9 * (Self.now() - start)
        return fired
    }

    /// After the buildpack: nil when it kept within its allowance (what it added is then
    /// charged), else the one line that says where it went beyond. `hitFileLimit`: it ended by
    /// SIGXFSZ, so a file met `maxFileSize`.
    func settle(buildpack: String, hitFileLimit: Bool) -> String? {
        let after = measure()
        let added = growth(after)
        if !fired && !hitFileLimit && added <= Int64(allowance),
           (try? account.charge(UInt64(max(added, 0)), for: buildpack)) != nil {
            return nil
        }
        let left = "\(DiskBudget.describe(allowance)) of the disk budget (--disk \(DiskBudget.describe(account.budget.limit)))"
        if added > Int64(allowance) || fired {
            let key = Self.largest(after) { Int64($1.bytes) - Int64(before[$0]?.bytes ?? 0) }
            return "\(buildpack) exceeded the disk budget in \(Self.describe(key)): it wrote "
                + "\(DiskBudget.describe(UInt64(max(added, 0)))) where \(left) was left; it was stopped"
        }
        // Nothing large is left (the file limit refused it): name what it changed last.
        let key = Self.largest(after) { $1.newestChange }
        return "\(buildpack) exceeded the disk budget in \(Self.describe(key)): a file would have grown past the \(left) "
            + "that was left (RLIMIT_FSIZE); it was stopped"
    }

    /// The entry with the largest `measure`, the first by name among equals.
    private static func largest(_ usage: [String: TreeUsage], by measure: (String, TreeUsage) -> Int64) -> String {
        usage.sorted { $0.key < $1.key }.max { measure($0.key, $0.value) < measure($1.key, $1.value) }?.key ?? workspace
    }

    private static func describe(_ key: String) -> String {
        if key == workspace { return "the app directory (/workspace)" }
        return key.hasSuffix(".toml") || key.contains(".sbom.") ? "its file '\(key)'" : "layer '\(key)'"
    }

    private static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }
}

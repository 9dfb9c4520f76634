import Glibc
import Synchronization

/// How many bytes one build or one run may add to the host's disk (`--disk`): the workspace copy,
/// what buildpacks write, restored cache layers, exported blobs, the cache and extracted images.
/// Writers charge before they write, so a refused write never happens.
public struct DiskBudget: Sendable, Equatable {
    public var limit: UInt64

    public init(limit: UInt64) { self.limit = limit }

    /// 20 GiB, or half the space free to the invoker where the work is written when that is less:
    /// enough for the largest ordinary builds, never the whole of a shared disk.
    public static func standard(for directory: String) -> DiskBudget {
        let fixed: UInt64 = 20 << 30
        var fs = statvfs()
        guard statvfs(directory, &fs) == 0 else { return DiskBudget(limit: fixed) }
        let free = UInt64(fs.f_bavail).multipliedReportingOverflow(by: UInt64(fs.f_frsize))
        return DiskBudget(limit: free.overflow ? fixed : min(fixed, free.partialValue / 2))
    }

    /// `512M`, `10G`, `1.5G` shown back to a person.
    public static func describe(_ bytes: UInt64) -> String {
        for (unit, shift) in [("G", 30), ("M", 20), ("K", 10)] where bytes >= 1 << shift {
            let value = Double(bytes) / Double(UInt64(1) << shift)
            return value == value.rounded() ? "\(UInt64(value))\(unit)" : String(Double(Int(value * 10)) / 10) + unit
        }
        return "\(bytes) bytes"
    }
}

/// What has been charged against a budget, shared by every writer of one build or run.
public final class DiskAccount: Sendable {
    public let budget: DiskBudget
    private let used = Atomic<UInt64>(0)

    public init(_ budget: DiskBudget) { self.budget = budget }

    public var charged: UInt64 { used.load(ordering: .relaxed) }
    public var remaining: UInt64 { budget.limit - min(charged, budget.limit) }

    /// Charges `bytes`, or throws without charging anything when they do not fit.
    public func charge(_ bytes: UInt64, for what: @autoclosure () -> String) throws(OCIError) {
        var current = used.load(ordering: .relaxed)
        while true {
            let (total, overflow) = current.addingReportingOverflow(bytes)
            guard !overflow, total <= budget.limit else { throw overdrawn(bytes, for: what()) }
            let (exchanged, original) = used.compareExchange(expected: current, desired: total, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    /// The error for `bytes` that do not fit, without charging them.
    public func overdrawn(_ bytes: UInt64, for what: String) -> OCIError {
        OCIError(.overBudget, "\(what) needs \(DiskBudget.describe(bytes)) but only \(DiskBudget.describe(remaining)) "
                 + "of the disk budget (--disk \(DiskBudget.describe(budget.limit))) is left")
    }

    /// Bytes in whole 4 KiB blocks, as a file system allocates them.
    public static func blocks(_ bytes: UInt64) -> UInt64 { (bytes + 4095) / 4096 * 4096 }
}

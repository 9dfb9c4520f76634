import CrashSafety
import Glibc
import Synchronization
import SystemCalls
import SystemPackage

/// A cgroup controller a sandbox's limits use.
public enum CgroupController: String, Sendable, CaseIterable, Comparable {
    case memory, pids, cpu

    public static func < (a: CgroupController, b: CgroupController) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Which mechanism holds a sandbox's memory, pids and cpu limits. Decided once
/// per command (`detect`), then carried by every plan of that command.
public enum LimitEnforcement: Sendable, Equatable {
    /// Unified hierarchy: each sandbox is a child of `parent`, a directory the
    /// invoker may write whose children get `controllers`.
    case cgroupV2(parent: String, controllers: [CgroupController])
    /// v1 hierarchies: each sandbox gets a child of each controller's parent.
    case cgroupV1(parents: [CgroupController: String])
    /// No cgroup to be had: RLIMIT_AS, RLIMIT_NPROC and tmpfs sizes only.
    case rlimits(reason: String)

    public var controllers: [CgroupController] {
        switch self {
        case .cgroupV2(_, let controllers): controllers.sorted()
        case .cgroupV1(let parents): parents.keys.sorted()
        case .rlimits: []
        }
    }

    /// One line for the person: what holds and what is not enforced.
    public var summary: String {
        let missing = CgroupController.allCases.filter { !controllers.contains($0) }.map(\.rawValue)
        let lacking = missing.isEmpty ? "" : "; not enforced: " + missing.joined(separator: ", ")
        let held = controllers.map(\.rawValue).joined(separator: ", ")
        switch self {
        case .cgroupV2: return "cgroup v2 (\(held)), tmpfs pages counted in memory\(lacking)"
        case .cgroupV1: return "cgroup v1 (\(held)), tmpfs pages counted in memory\(lacking)"
        case .rlimits(let reason):
            return "rlimits only (\(reason)): memory is per process (RLIMIT_AS) and tmpfs is bounded by its size only, pids count the stack user's processes (RLIMIT_NPROC), cpu not enforced"
        }
    }
}

/// What the kernel says about the invoker's cgroups. `root` prefixes every
/// mount point, so the decision can be tried on a directory tree that only
/// looks like /sys/fs/cgroup.
public struct CgroupProbe: Sendable {
    /// The text of /proc/self/mounts.
    public var mounts: String
    /// The text of /proc/self/cgroup.
    public var membership: String
    public var root: String
    public var pid: pid_t
    /// Processes of this run that share its cgroup and move with it: the zygote.
    public var companions: [pid_t]
    public var euid: uid_t

    public init(mounts: String, membership: String, root: String = "", pid: pid_t = getpid(),
                companions: [pid_t] = Zygote.processID.map { [$0] } ?? [], euid: uid_t = geteuid()) {
        self.mounts = mounts
        self.membership = membership
        self.root = root
        self.pid = pid
        self.companions = companions
        self.euid = euid
    }

    public static func live() -> CgroupProbe {
        CgroupProbe(mounts: CgroupFiles.read("/proc/self/mounts") ?? "",
                    membership: CgroupFiles.read("/proc/self/cgroup") ?? "")
    }

    /// Mount points of `type` (cgroup or cgroup2) with their super options.
    func mountPoints(type: String) -> [(path: String, options: [String])] {
        // fstab fields: device, mount point, type, options.
        CgroupFiles.records(of: mounts, separator: UInt8(ascii: " "), fields: 4).compactMap { fields in
            fields[2] == type ? (fields[1], Self.commaList(fields[3])) : nil
        }
    }

    /// The invoker's own cgroup in the hierarchy whose controller list is `matching`.
    func ownPath(_ matching: ([String]) -> Bool) -> String? {
        // hierarchy-ID:controller-list:cgroup-path
        CgroupFiles.records(of: membership, separator: UInt8(ascii: ":"), fields: 3, lastTakesRest: true)
            .first { matching(Self.commaList($0[1])) }?[2]
    }

    static func commaList(_ text: String) -> [String] {
        text.isEmpty ? [] : CgroupFiles.records(of: text, separator: UInt8(ascii: ","), fields: nil).first ?? []
    }
}

extension LimitEnforcement {
    /// v2 where the invoker's own cgroup is delegated to it, else v1 where it
    /// may write the controllers' hierarchies (root), else rlimits. Removes
    /// the stale, empty cgroups of dead supervisors on the way.
    public static func detect(_ probe: CgroupProbe = .live()) -> LimitEnforcement {
        let v2 = unified(probe)
        if case .success(let enforcement) = v2 { return enforcement }
        if let v1 = legacy(probe) { return v1 }
        if case .failure(let reason) = v2 { return .rlimits(reason: reason.text) }
        return .rlimits(reason: "no cgroup delegated")
    }

    struct Reason: Error { let text: String }

    static func unified(_ probe: CgroupProbe) -> Result<LimitEnforcement, Reason> {
        guard let mount = probe.mountPoints(type: "cgroup2").first?.path,
              let own = probe.ownPath({ $0.isEmpty }) else {
            return .failure(Reason(text: "no cgroup delegated"))
        }
        if probe.euid == 0, let enforcement = unifiedForRoot(probe.root + mount, procRoot: probe.root) {
            return .success(enforcement)
        }
        let directory = probe.root + mount + (own == "/" ? "" : own)
        let available = CgroupFiles.words(directory + "/cgroup.controllers")
        let wanted = CgroupController.allCases.filter { available.contains($0.rawValue) }
        guard wanted.contains(.memory) && wanted.contains(.pids) else {
            return .failure(Reason(text: "no cgroup delegated"))
        }
        guard access(directory, W_OK) == 0, access(directory + "/cgroup.procs", W_OK) == 0,
              access(directory + "/cgroup.subtree_control", W_OK) == 0 else {
            return .failure(Reason(text: "cgroup v2 \(own) is not delegated to this user"))
        }
        collectStale(in: directory, root: probe.root)
        if !enable(wanted, in: directory) {
            // A cgroup with processes cannot hand controllers to children: the
            // supervisor, and its zygote, move into a leaf of their own first (systemd's rule).
            let leaf = directory + "/" + CgroupName.supervisorLeaf(probe.pid)
            let run = [probe.pid] + probe.companions
            guard mkdir(leaf, 0o755) == 0 || errno == EEXIST,
                  run.allSatisfy({ CgroupFiles.write(leaf + "/cgroup.procs", "\($0)") }) else {
                for pid in run { _ = CgroupFiles.write(directory + "/cgroup.procs", "\(pid)") }
                _ = rmdir(leaf)
                return .failure(Reason(text: "cannot move into a leaf of cgroup v2 \(own)"))
            }
            guard enable(wanted, in: directory) else {
                for pid in run { _ = CgroupFiles.write(directory + "/cgroup.procs", "\(pid)") }
                _ = rmdir(leaf)
                return .failure(Reason(text: "cgroup v2 \(own) holds other processes; start stockade in a delegated scope of its own"))
            }
        }
        return .success(.cgroupV2(parent: directory, controllers: wanted))
    }

    /// Root: a `stockade` child of the root cgroup, which alone may hold
    /// processes and give controllers to children; root's own cgroup (a
    /// session scope) usually holds other processes.
    static func unifiedForRoot(_ top: String, procRoot: String) -> LimitEnforcement? {
        let available = CgroupFiles.words(top + "/cgroup.subtree_control")
        let wanted = CgroupController.allCases.filter { available.contains($0.rawValue) }
        let parent = top + "/stockade"
        guard wanted.contains(.memory) && wanted.contains(.pids), mkdir(parent, 0o755) == 0 || errno == EEXIST,
              enable(wanted, in: parent) else { return nil }
        collectStale(in: parent, root: procRoot)
        return .cgroupV2(parent: parent, controllers: wanted)
    }

    private static func enable(_ wanted: [CgroupController], in directory: String) -> Bool {
        let file = directory + "/cgroup.subtree_control"
        let enabled = CgroupFiles.words(file)
        if wanted.allSatisfy({ enabled.contains($0.rawValue) }) { return true }
        _ = CgroupFiles.write(file, wanted.map { "+" + $0.rawValue }.joined(separator: " "))
        let now = CgroupFiles.words(file)
        return wanted.allSatisfy { now.contains($0.rawValue) || now.contains("+" + $0.rawValue) }
    }

    static func legacy(_ probe: CgroupProbe) -> LimitEnforcement? {
        var parents: [CgroupController: String] = [:]
        let hierarchies = probe.mountPoints(type: "cgroup")
        for controller in CgroupController.allCases {
            let name = controller.rawValue
            guard let mount = hierarchies.first(where: { $0.options.contains(name) })?.path,
                  let own = probe.ownPath({ $0.contains(name) }) else { continue }
            let directory = probe.root + mount + (own == "/" ? "" : own)
            guard access(directory, W_OK) == 0 else { continue }
            // Beneath the invoker's own cgroup, so a limit set on the invoker still holds.
            let parent = directory + "/stockade"
            guard mkdir(parent, 0o755) == 0 || errno == EEXIST else { continue }
            collectStale(in: parent, root: probe.root)
            parents[controller] = parent
        }
        return parents.isEmpty ? nil : .cgroupV1(parents: parents)
    }

    /// Removes the empty cgroups whose creating supervisor is gone.
    static func collectStale(in parent: String, root: String) {
        guard case .success(let raw) = systemCall({ open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }) else { return }
        let directory = FileDescriptor(rawValue: raw)
        defer { try? directory.close() }
        guard let entries = try? directory.directoryEntries() else { return }
        // Sandboxes' cgroups are directories named from a pid; the controllers'
        // files beside them (dozens in v1) are not looked at further.
        for entry in entries where entry.type == UInt8(DT_DIR) && entry.bytes.first.map({ (0x30...0x39).contains($0) }) == true {
            if CgroupName.isStale(entry.name, procRoot: root) { _ = rmdir(parent + "/" + entry.name) }
        }
    }
}

/// Names that say which supervisor made a cgroup: `<pid>.<start time>.<sandbox pid>`
/// (or `.supervisor` for the v2 leaf). The start time tells a reused pid apart.
enum CgroupName {
    static let supervisor: String = "\(getpid()).\(startTime(of: getpid(), procRoot: "") ?? 0)"
    private static let sandboxes = Atomic<Int>(0)

    /// Unique among the sandboxes of this supervisor.
    static func nextSandbox() -> String {
        "\(supervisor).\(sandboxes.add(1, ordering: .relaxed).newValue)"
    }

    static func supervisorLeaf(_ pid: pid_t) -> String {
        "\(pid).\(startTime(of: pid, procRoot: "") ?? 0).supervisor"
    }

    /// Field 22 of /proc/<pid>/stat, after the parenthesised command name.
    static func startTime(of pid: pid_t, procRoot: String) -> UInt64? {
        guard let stat = CgroupFiles.read(procRoot + "/proc/\(pid)/stat"),
              let close = stat.utf8.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        // After ") " index 1 is the state (field 3 of stat(5)), 20 the start time (field 22).
        let fields = CgroupFiles.records(of: String(stat[stat.utf8.index(after: close)...]), separator: UInt8(ascii: " "), fields: nil)
        return fields.first.flatMap { $0.count > 20 ? UInt64($0[20]) : nil }
    }

    static func isStale(_ name: String, procRoot: String) -> Bool {
        let parts = name.split(separator: ".")
        guard parts.count == 3, let pid = pid_t(parts[0]), let start = UInt64(parts[1]) else { return false }
        return startTime(of: pid, procRoot: procRoot) != start
    }
}

/// Removes one sandbox's cgroup directories; a value, so a crash cleanup can
/// keep it and call `remove()` itself.
public struct CgroupRemoval: Sendable, Equatable {
    public let directories: [String]

    /// True when every directory is gone. The kernel refuses while a process
    /// is still in one; the last ones leave just after pid 1 is reaped.
    @discardableResult
    public func remove() -> Bool {
        var left = directories
        for _ in 0..<200 {
            left = left.filter { rmdir($0) != 0 && errno != ENOENT }
            if left.isEmpty {
                for directory in directories { CleanupJournal.record(.forget, directory) }
                return true
            }
            usleep(1000)
        }
        return false
    }
}

/// A cgroup limit a sandbox ran into.
public struct LimitReached: Sendable, Equatable, CustomStringConvertible {
    /// The memory limit, when its OOM killer killed a process of the sandbox.
    public var memory: UInt64?
    /// The pids limit, when a fork or clone was refused for it.
    public var pids: UInt64?

    public var description: String {
        var parts: [String] = []
        if let memory { parts.append("memory limit \(ByteCount.describe(memory)) reached") }
        if let pids { parts.append("process limit of \(pids) reached") }
        return parts.joined(separator: ", ")
    }
}

public enum ByteCount {
    /// 64 MiB, 1.5 GiB, 512 KiB, 100 B.
    public static func describe(_ bytes: UInt64) -> String {
        let units: [(UInt64, String)] = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        for (size, name) in units where bytes >= size {
            let tenths = (bytes * 10 + size / 2) / size
            return tenths % 10 == 0 ? "\(tenths / 10) \(name)" : "\(tenths / 10).\(tenths % 10) \(name)"
        }
        return "\(bytes) B"
    }
}

/// One sandbox's cgroups: made (or taken from a run's pool) while its pid 1
/// sets up, joined by pid 1 before it starts anything, read and then removed
/// or pooled once it is reaped.
struct SandboxCgroup {
    let version: Int
    let directories: [CgroupController: String]
    let limits: ResourceLimits
    /// What earlier tenants left in the counters the verdict reads: zero for a new cgroup.
    var baseline = CgroupCounters()
    /// Where it goes back to once empty; nil removes it.
    var pool: CgroupPool?

    /// nil when the plan has no cgroup limits or only rlimits hold.
    static func create(_ enforcement: LimitEnforcement, limits: ResourceLimits,
                       pool: CgroupPool? = nil) throws(SandboxError) -> SandboxCgroup? {
        func wants(_ controller: CgroupController) -> Bool {
            switch controller {
            case .memory: limits.memory != nil
            case .pids: limits.pids != nil
            case .cpu: limits.cpus != nil
            }
        }
        let version: Int
        let parents: [CgroupController: String]
        switch enforcement {
        case .rlimits:
            return nil
        case .cgroupV2(let parent, let controllers):
            version = 2
            parents = Dictionary(uniqueKeysWithValues: controllers.filter(wants).map { ($0, parent) })
        case .cgroupV1(let all):
            version = 1
            parents = all.filter { wants($0.key) }
        }
        guard !parents.isEmpty else { return nil }
        while let directories = pool?.take(parents) {
            var cgroup = SandboxCgroup(version: version, directories: directories, limits: limits, pool: pool)
            if let baseline = cgroup.prepareForReuse() {
                cgroup.baseline = baseline
                try cgroup.apply(cgroup.limitSettings(reused: true))
                return cgroup
            }
            cgroup.removal.remove()
        }
        let name = CgroupName.nextSandbox()
        let directories = parents.mapValues { $0 + "/" + name }
        let cgroup = SandboxCgroup(version: version, directories: directories, limits: limits, pool: pool)
        for directory in Set(directories.values) {
            // Journalled first: a janitor removes it if this supervisor is killed before it does.
            CleanupJournal.record(.cgroup, directory)
            guard mkdir(directory, 0o755) != 0 else { continue }
            let code = Errno.current.rawValue
            cgroup.removal.remove()
            throw SandboxError(.system, "cannot create the cgroup \(directory)", errno: code)
        }
        try cgroup.apply(cgroup.limitSettings(reused: false))
        return cgroup
    }

    /// The files and values that set the limits, in an order the kernel accepts.
    private func limitSettings(reused: Bool) -> [(file: String, value: String)] {
        var settings: [(file: String, value: String)] = []
        if version == 2 {
            if let memory = limits.memory, let directory = directories[.memory] {
                settings.append((directory + "/memory.max", "\(memory)"))
                settings.append((directory + "/memory.swap.max", "0"))
            }
            if let pids = limits.pids, let directory = directories[.pids] { settings.append((directory + "/pids.max", "\(pids)")) }
            if let cpus = limits.cpus, let directory = directories[.cpu] {
                settings.append((directory + "/cpu.max", "\(Self.quota(cpus)) \(Self.period)"))
            }
            return settings
        }
        if let memory = limits.memory, let directory = directories[.memory] {
            // The limit with swap may never be below the plain one: a reused cgroup's
            // old pair is lifted first, so that either may shrink or grow.
            if reused { settings.append((directory + "/memory.memsw.limit_in_bytes", "-1")) }
            settings.append((directory + "/memory.limit_in_bytes", "\(memory)"))
            // No swap either.
            settings.append((directory + "/memory.memsw.limit_in_bytes", "\(memory)"))
        }
        if let pids = limits.pids, let directory = directories[.pids] { settings.append((directory + "/pids.max", "\(pids)")) }
        if let cpus = limits.cpus, let directory = directories[.cpu] {
            settings.append((directory + "/cpu.cfs_period_us", "\(Self.period)"))
            settings.append((directory + "/cpu.cfs_quota_us", "\(Self.quota(cpus))"))
        }
        return settings
    }

    private func apply(_ settings: [(file: String, value: String)]) throws(SandboxError) {
        for setting in settings where !CgroupFiles.write(setting.file, setting.value) {
            let code = Errno.current.rawValue
            // memsw and swap.max exist only with swap accounting; without it there is no swap to limit.
            if code == ENOENT && Self.swapFile(setting.file) { continue }
            removal.remove()
            throw SandboxError(.system, "cannot set \(setting.file) to \(setting.value)", errno: code)
        }
    }

    private static func swapFile(_ path: String) -> Bool { path.contains("memsw.") || path.hasSuffix("swap.max") }

    static let period = 100_000

    /// Microseconds per period; the kernel's floor is 1 ms.
    static func quota(_ cpus: Double) -> Int { max(1000, Int((cpus * Double(period)).rounded())) }

    var removal: CgroupRemoval { CgroupRemoval(directories: Set(directories.values).sorted()) }

    /// The files the sandbox's pid 1 writes itself into, opened here with
    /// the supervisor's credentials; one thread moving itself takes no global lock.
    func openJoinFiles() throws(SandboxError) -> [Int32] {
        var fds: [Int32] = []
        for directory in Set(directories.values).sorted() {
            let path = directory + (version == 1 ? "/tasks" : "/cgroup.procs")
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else {
                let code = Errno.current.rawValue
                for fd in fds { close(fd) }
                throw SandboxError(.system, "cannot open \(path)", errno: code)
            }
            fds.append(fd)
        }
        return fds
    }

    /// What the kernel counted since this tenant came: OOM kills and refused forks.
    func reached() -> LimitReached? {
        let now = counters()
        var result = LimitReached()
        if now.oomKills > baseline.oomKills { result.memory = limits.memory }
        // v1 may count no refused fork in pids.events; a peak at the limit says as much
        // (a reused cgroup's peak is below the limit: `prepareForReuse` sees to that).
        if let limit = limits.pids, directories[.pids] != nil,
           now.forksRefused > baseline.forksRefused || now.pidsPeak >= limit {
            result.pids = limit
        }
        return result.memory == nil && result.pids == nil ? nil : result
    }

    private func counters() -> CgroupCounters {
        var counters = CgroupCounters()
        if let directory = directories[.memory] {
            let file = version == 2 ? directory + "/memory.events" : directory + "/memory.oom_control"
            counters.oomKills = CgroupFiles.counter("oom_kill", in: file) ?? 0
        }
        if let directory = directories[.pids] {
            counters.forksRefused = CgroupFiles.counter("max", in: directory + "/pids.events") ?? 0
            counters.pidsPeak = CgroupFiles.number(directory + "/pids.peak") ?? 0
        }
        return counters
    }

    /// Whether no task is left in any of the directories, nor a child cgroup that could hold one.
    func isEmpty() -> Bool {
        for directory in Set(directories.values) {
            // kernfs counts a directory's subdirectories in its link count.
            var status = stat()
            guard stat(directory, &status) == 0, status.st_nlink == 2 else { return false }
            if version == 2 {
                guard CgroupFiles.counter("populated", in: directory + "/cgroup.events") == 0 else { return false }
            } else {
                // `tasks` lists every thread, `cgroup.procs` only thread groups.
                guard let tasks = CgroupFiles.read(directory + "/tasks"), tasks.isEmpty else { return false }
            }
        }
        return true
    }

    /// Clears what the last tenant left, so that the next gets its whole limit and a verdict
    /// of its own; returns the counters to subtract, nil when this cgroup may not be reused.
    private func prepareForReuse() -> CgroupCounters? {
        guard isEmpty() else { return nil }
        if let directory = directories[.memory] {
            guard dropCharges(directory) else { return nil }
            if version == 1 {
                for file in ["memory.max_usage_in_bytes", "memory.failcnt",
                             "memory.memsw.max_usage_in_bytes", "memory.memsw.failcnt"] {
                    guard CgroupFiles.write(directory + "/" + file, "0") || errno == ENOENT && Self.swapFile(file) else {
                        return nil
                    }
                }
            }
        }
        let counters = counters()
        // pids.peak cannot be reset: a cgroup that reached this limit once would report every later tenant.
        if let limit = limits.pids, directories[.pids] != nil, counters.pidsPeak >= limit { return nil }
        return counters
    }

    /// Charges stay with an empty cgroup: the page cache its tenants touched, kernel memory and,
    /// unreclaimable without swap, the pages of files they left on a tmpfs. True when at most
    /// `leftover` remains, so the next tenant gets its whole limit. Dirty pages are not
    /// reclaimed here (writeback would stall the next sandbox): such a cgroup is removed instead.
    private func dropCharges(_ directory: String) -> Bool {
        let usage = directory + (version == 1 ? "/memory.usage_in_bytes" : "/memory.current")
        guard let charged = CgroupFiles.number(usage) else { return false }
        let leftover = min(1 << 20, (limits.memory ?? 0) / 64)
        if charged <= leftover { return true }
        let stat = directory + "/memory.stat"
        let unwritten = CgroupFiles.counters(version == 1 ? ["dirty", "writeback"] : ["file_dirty", "file_writeback"], in: stat)
            .reduce(0) { $0 + ($1 ?? 1) }
        guard unwritten == 0 else { return false }
        // Clean page cache and slab: reclaimed at once. v2 says EAGAIN when some is left, read below.
        if version == 1 {
            guard CgroupFiles.write(directory + "/memory.force_empty", "0") else { return false }
        } else {
            _ = CgroupFiles.write(directory + "/memory.reclaim", "\(charged)")
        }
        return CgroupFiles.number(usage).map { $0 <= leftover } ?? false
    }

    /// Back to the pool when provably empty, else removed. pid 1 is reaped, so
    /// every process of the sandbox is gone; the kernel unlinks the last ones just after.
    func release() {
        guard let pool else {
            removal.remove()
            return
        }
        for _ in 0..<50 {
            if isEmpty() {
                if pool.give(directories) { return }
                break
            }
            usleep(1000)
        }
        removal.remove()
    }
}

/// The counters of a cgroup its verdict reads.
struct CgroupCounters: Equatable {
    var oomKills: UInt64 = 0
    var forksRefused: UInt64 = 0
    var pidsPeak: UInt64 = 0
}

/// Emptied cgroups kept for the next sandboxes of one run (detection and build start
/// many): creating and removing a memory cgroup is the most expensive part of a
/// sandbox's start. A pooled cgroup stays in the cleanup journal, so a janitor removes
/// it after a crash; `drain()` removes the rest at the end of the run.
public final class CgroupPool: Sendable, Equatable {
    private struct State {
        var idle: [[CgroupController: String]: [[CgroupController: String]]] = [:]
        var drained = false
    }
    private let state = Mutex(State())

    public init() {}

    public static func == (a: CgroupPool, b: CgroupPool) -> Bool { a === b }

    /// The directories of an idle cgroup under `parents` (controller to parent), if any.
    func take(_ parents: [CgroupController: String]) -> [CgroupController: String]? {
        state.withLock { $0.idle[parents]?.popLast() }
    }

    /// Keeps an emptied cgroup; false once the pool is drained.
    func give(_ directories: [CgroupController: String]) -> Bool {
        let parents = directories.mapValues { String($0[..<$0.lastIndex(of: "/")!]) }
        return state.withLock { state in
            guard !state.drained else { return false }
            state.idle[parents, default: []].append(directories)
            return true
        }
    }

    /// How many cgroups wait in the pool.
    public var count: Int { state.withLock { $0.idle.values.reduce(0) { $0 + $1.count } } }

    /// Removes every pooled cgroup; a sandbox that ends later removes its own.
    public func drain() {
        let idle = state.withLock { state in
            state.drained = true
            let all = Array(state.idle.values.joined())
            state.idle = [:]
            return all
        }
        for directories in idle { CgroupRemoval(directories: Set(directories.values).sorted()).remove() }
    }
}

/// The small text files of cgroupfs and procfs.
enum CgroupFiles {
    static func read(_ path: String) -> String? {
        HostFiles.read(path, limit: 1 << 16).map { String(decoding: $0, as: UTF8.self) }
    }

    // These run for every sandbox of a run, on pooled cgroups too: byte scans, not `split`.

    /// The first `fields` fields of each line of `text` (lines with fewer are
    /// skipped; nil: all of them); with `lastTakesRest` the last one runs to the line's end (a
    /// cgroup path may hold a colon). Every sandbox start reads these files: a
    /// byte scan, since generic `split` and grapheme breaking were most of the cost.
    static func records(of text: String, separator: UInt8, fields count: Int?, lastTakesRest: Bool = false) -> [[String]] {
        let wanted = count ?? .max
        var text = text
        return text.withUTF8 { bytes in
            var records: [[String]] = []
            var fields: [String] = []
            var start = 0
            for index in 0...bytes.count {
                let byte = index < bytes.count ? bytes[index] : UInt8(ascii: "\n")
                let splits = byte == separator && !(lastTakesRest && fields.count == wanted - 1)
                guard splits || byte == UInt8(ascii: "\n") else { continue }
                if fields.count < wanted {
                    fields.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
                }
                start = index + 1
                if byte == UInt8(ascii: "\n") {
                    if fields.count == wanted || count == nil { records.append(fields) }
                    fields.removeAll(keepingCapacity: true)
                }
            }
            return records
        }
    }


    static func words(_ path: String) -> Set<String> {
        Set(CgroupFiles.records(of: read(path) ?? "", separator: UInt8(ascii: " "), fields: nil).joined().filter { !$0.isEmpty })
    }

    /// `key N` from a flat-keyed file (memory.events, pids.events, memory.oom_control).
    static func counter(_ key: String, in path: String) -> UInt64? {
        counters([key], in: path)[0]
    }

    /// Several keys of one flat-keyed file from one read of it, in the order asked.
    static func counters(_ keys: [String], in path: String) -> [UInt64?] {
        let lines = records(of: read(path) ?? "", separator: UInt8(ascii: " "), fields: 2, lastTakesRest: true)
        return keys.map { key in lines.first { $0[0] == key }.flatMap { UInt64($0[1]) } }
    }

    /// A file holding one number.
    static func number(_ path: String) -> UInt64? {
        CgroupFiles.records(of: read(path) ?? "", separator: UInt8(ascii: "\n"), fields: 1).first.flatMap { UInt64($0[0]) }
    }

    /// One write(2) of `value`, as cgroupfs wants it.
    static func write(_ path: String, _ value: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        return bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == bytes.count
    }
}

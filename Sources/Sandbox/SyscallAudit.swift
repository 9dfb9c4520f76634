import CSandbox
import CSeccomp
import Glibc
import JSON
import Seccomp
import Synchronization
import SystemCalls
import SystemPackage

/// The filters of an audited sandbox: audit variants that route the
/// observed and the denied syscalls to a listener, and the original filters
/// that decide every notification, so the audit never allows what they deny.
public struct AuditFilters: Sendable, Equatable {
    /// Installed first: the hardening baseline with its denials turned into notifications.
    public var baseline: BPFProgram
    /// Installed last, with the listener.
    public var profile: BPFProgram
    /// SECCOMP_FILTER_FLAG_* of the profile (LOG, SPEC_ALLOW); the listener flags are added.
    public var profileFlags: UInt32
    /// The original filters, in installation order, evaluated for each notification.
    public var enforcing: [BPFProgram]

    public init(baseline: BPFProgram, profile: BPFProgram, profileFlags: UInt32 = 0, enforcing: [BPFProgram]) {
        self.baseline = baseline
        self.profile = profile
        self.profileFlags = profileFlags
        self.enforcing = enforcing
    }
}

/// One observed syscall.
public struct AuditEvent: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        case allowed
        case denied(errno: Int32)
    }

    /// Microseconds since the epoch.
    public var time: Int64
    public var sandbox: String
    /// Caller-given context (for example phase and buildpack), written into every event.
    public var labels: [String: String]
    /// As seen inside the sandbox.
    public var pid: Int32
    public var syscall: String
    public var arguments: AuditArguments
    public var outcome: Outcome
}

/// Decoded arguments; pointers are read from the process with a size cap.
/// Advisory: the process may change its memory between this read and the
/// kernel's after CONTINUE (the decision itself uses registers only).
public enum AuditArguments: Sendable, Equatable {
    case exec(path: String, argv: [String])
    case address(family: String, address: String?, port: Int?, path: String?)
    case open(path: String, flags: [String])
    case socket(family: String, type: Int)
    case values([UInt64])
}

/// What became of an event handed to a sink.
public enum AuditRecording: Sendable, Equatable {
    case kept
    /// Left out on purpose: the log is at its size or rate cap.
    case dropped
    /// Could not be kept: a write failed.
    case failed
}

/// Where events go. `flush` returns false when events could not be kept.
public protocol AuditSink: Sendable {
    func record(_ event: AuditEvent) -> AuditRecording
    /// Called when a sandbox's last process is gone.
    func flush() -> Bool
}

/// What an audited sandbox asks of the supervisor.
public struct AuditObserver: Sendable {
    public var sandbox: String
    public var labels: [String: String]
    /// nil: count only (learning a profile, which needs each call's name and outcome): the
    /// arguments are kept as numbers, the pid as the host sees it, and nothing is read from the
    /// process or /proc, so every answer comes sooner.
    public var sink: (any AuditSink)?

    public init(sandbox: String, labels: [String: String] = [:], sink: (any AuditSink)?) {
        self.sandbox = sandbox
        self.labels = labels
        self.sink = sink
    }
}

/// Counts for the end of a run.
public struct AuditSummary: Sendable, Equatable {
    public var counts: [String: Int] = [:]
    public var programs: Set<String> = []
    public var destinations: Set<String> = []
    public var denials: [String: Int] = [:]
    /// The events that could not be recorded.
    public var lost = 0
    /// The events left out of the log by its caps (still counted here).
    public var dropped = 0
    /// Every syscall seen.
    public var syscalls: Set<String> = []
    /// Every syscall seen and allowed: what a learned profile allows.
    public var allowedSyscalls: Set<String> = []

    public init() {}

    mutating func add(_ event: AuditEvent) {
        counts[event.syscall, default: 0] += 1
        syscalls.insert(event.syscall)
        switch event.outcome {
        case .denied: denials[event.syscall, default: 0] += 1
        case .allowed: allowedSyscalls.insert(event.syscall)
        }
        switch event.arguments {
        case .exec(let path, _): programs.insert(path)
        case .address(let family, let address, let port, let path):
            if event.syscall != "bind" {
                destinations.insert(path.map { "\(family):\($0)" } ?? "\(family):\(address ?? "?"):\(port ?? 0)")
            }
        default: break
        }
    }

    /// Lines for stderr.
    public var lines: [String] {
        var out: [String] = []
        let total = counts.values.reduce(0, +)
        out.append("audit: \(total) events: " + counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        if !programs.isEmpty { out.append("audit: executed: " + programs.sorted().joined(separator: ", ")) }
        if !destinations.isEmpty { out.append("audit: connected to: " + destinations.sorted().joined(separator: ", ")) }
        if !denials.isEmpty {
            out.append("audit: denied: " + denials.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if dropped > 0 { out.append("audit: \(dropped) events not written: the log reached its size or rate cap") }
        return out
    }
}

/// Answers the notifications of one sandbox on a thread of its own, until
/// every process that could notify is gone. Every notification is answered,
/// the child first, whatever happens to the log: the answer waits only for the
/// decision (registers, through a ``DecisionCache``) and for the read of the
/// arguments' memory, which must happen while the task still waits (after
/// CONTINUE it runs on, and an execve replaces that memory). Counting,
/// formatting and writing happen after the answer, on a second thread fed
/// through a bounded ``EventQueue``.
final class NotificationServer: Sendable {
    let listener: Int32
    let enforcing: [BPFProgram]
    let observer: AuditObserver
    /// What the command's first execve is: a process that is not yet dumpable
    /// may not be readable by an unprivileged supervisor.
    let firstExec: AuditArguments
    /// Ends the whole sandbox, for a decision the kernel would have made a kill.
    let killSandbox: @Sendable () -> Void
    private let summary = Mutex<AuditSummary>(AuditSummary())
    private let queue = EventQueue(capacity: 4096)
    /// Set when the recorder has taken the last event.
    private let finished = Mutex<Bool>(false)

    init(listener: Int32, enforcing: [BPFProgram], observer: AuditObserver, firstExec: AuditArguments,
         killSandbox: @escaping @Sendable () -> Void) {
        self.firstExec = firstExec
        self.killSandbox = killSandbox
        self.listener = listener
        self.enforcing = enforcing
        self.observer = observer
    }

    func start() {
        // Without a second thread the events are recorded on the serving one.
        let recorder = DedicatedThread.spawn { [self] in
            recordQueued()
            finished.withLock { $0 = true }
        }
        DedicatedThread.start { [self] in
            serve(recordInline: !recorder)
            close(listener)
            queue.close()
            if !recorder { finished.withLock { $0 = true } }
        }
    }

    /// Waits for the server to see the last process go and every event to be recorded, then its summary.
    func finish() -> AuditSummary {
        while !finished.withLock({ $0 }) { usleep(1000) }
        let flushed = observer.sink?.flush() ?? true
        return summary.withLock {
            if !flushed { $0.lost += 1 }
            return $0
        }
    }

    private func record(_ event: AuditEvent) {
        let recording = observer.sink?.record(event) ?? .kept
        summary.withLock {
            $0.add(event)
            if recording == .failed { $0.lost += 1 }
            if recording == .dropped { $0.dropped += 1 }
        }
    }

    private func recordQueued() {
        var batch: [AuditEvent] = []
        while queue.take(into: &batch) {
            for event in batch { record(event) }
            batch.removeAll(keepingCapacity: true)
        }
    }

    private func serve(recordInline: Bool) {
        // The kernels that take SYNC_WAKE_UP (6.6+) also end a blocking receive once no process is
        // left (ENOENT, and the descriptor polls as hung up); older ones could block in it forever.
        let receiveBlocks = stk_notify_sync_wake_up(listener) == 0
        var request: UnsafeMutablePointer<seccomp_notif>?
        var response: UnsafeMutablePointer<seccomp_notif_resp>?
        guard seccomp_notify_alloc(&request, &response) == 0, let request, let response else { return }
        defer { seccomp_notify_free(request, response) }
        var names = NameCache()
        var decisions = DecisionCache(filters: enforcing)
        var firstExecSeen = false
        var mustPoll = !receiveBlocks
        let countOnly = observer.sink == nil
        while true {
            // A receive that blocks saves the poll and its wait queue on every notification.
            if mustPoll {
                var fd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                guard case .success = systemCall({ poll(&fd, 1, -1) }), fd.revents & Int16(POLLIN) != 0 else {
                    return // POLLHUP: no process left
                }
            }
            let received = stk_notify_receive(listener, request, MemoryLayout<seccomp_notif>.size)
            if received != 0 {
                // ENOENT: the task died meanwhile, or none is left, which only the poll tells apart.
                mustPoll = !receiveBlocks || received != EINTR
                continue
            }
            mustPoll = !receiveBlocks
            let notification = request.pointee
            let decision = withUnsafeBytes(of: notification.data) { decisions.decide(raw: $0) }
            let args = withUnsafeBytes(of: notification.data.args) { Array($0.bindMemory(to: UInt64.self)) }
            let name = names.name(notification.data.nr)
            // Memory is read while the task waits for our answer.
            var arguments = countOnly ? .values(args) : ArgumentDecoder(pid: pid_t(notification.pid)).decode(name, args)
            if name == "execve" && !firstExecSeen {
                firstExecSeen = true
                if case .exec(let path, _) = arguments, path.isEmpty { arguments = firstExec }
            }
            let pid = countOnly ? Int32(bitPattern: notification.pid) : names.sandboxPid(pid_t(notification.pid))

            memset(response, 0, MemoryLayout<seccomp_notif_resp>.size)
            response.pointee.id = notification.id
            let outcome: AuditEvent.Outcome
            // Exactly what the original filters would have done, never more.
            switch decision {
            case .allow, .log:
                response.pointee.flags = UInt32(SECCOMP_USER_NOTIF_FLAG_CONTINUE)
                outcome = .allowed
            case .errno(let code):
                response.pointee.error = -code
                outcome = .denied(errno: code)
            case .notify, .trace:
                // No agent or tracer answers these in normal mode: the kernel fails them.
                response.pointee.error = -ENOSYS
                outcome = .denied(errno: ENOSYS)
            case .kill, .trap:
                // Kills and traps stay in BPF and never get here; if one did, end it all.
                response.pointee.error = -EPERM
                outcome = .denied(errno: EPERM)
                killSandbox()
            }
            // The answer is taken only while the notification is still pending: its task
            // waited, alive and the same, through every read above (what the separate
            // SECCOMP_IOCTL_NOTIF_ID_VALID check proved, one system call fewer).
            guard seccomp_notify_respond(listener, response) == 0 else { continue }
            let event = AuditEvent(time: Self.now(), sandbox: observer.sandbox, labels: observer.labels, pid: pid,
                                   syscall: name, arguments: arguments, outcome: outcome)
            if recordInline { record(event) } else { queue.put(event) }
        }
    }

    static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }
}

extension AuditEvent {
    /// Roughly what the event holds in memory: its strings (an exec's argv may be 64 KiB).
    var approximateSize: Int {
        let payload = switch arguments {
        case .exec(let path, let argv): path.utf8.count + argv.reduce(0) { $0 + $1.utf8.count + 16 }
        case .address(let family, let address, _, let path): family.utf8.count + (address?.utf8.count ?? 0) + (path?.utf8.count ?? 0)
        case .open(let path, let flags): path.utf8.count + flags.count * 16
        case .socket(let family, _): family.utf8.count
        case .values(let values): values.count * 8
        }
        return 160 + syscall.utf8.count + payload
    }
}

/// Events from the notification thread to the recorder. Bounded in events and
/// in bytes (4096 execs of 64 KiB argv each would be 256 MiB): when it is
/// full the notification thread waits (the task that caused the event has its
/// answer already; the next one waits for it), so no event is lost and memory
/// stays bounded. The recorder, once woken, takes every queued event at once
/// and then lets more gather for a millisecond, so that a stream of
/// notifications wakes it (a futex call on the notification path) only after
/// a pause, or when the queue is half full.
final class EventQueue: @unchecked Sendable {
    // All below under `lock`.
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var events: [AuditEvent] = []
    private var queuedBytes = 0
    private var closed = false
    private var recorderSleeps = false
    private var producerWaits = false
    let capacity: Int
    let byteCapacity: Int

    init(capacity: Int, byteCapacity: Int = 8 << 20) {
        self.capacity = capacity
        self.byteCapacity = byteCapacity
        pthread_mutex_init(lock, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(changed, &attributes)
        pthread_condattr_destroy(&attributes)
        events.reserveCapacity(capacity)
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(lock)
        changed.deallocate()
        lock.deallocate()
    }

    func put(_ event: AuditEvent) {
        let size = event.approximateSize
        pthread_mutex_lock(lock)
        // An event larger than the byte bound alone still goes through, into an empty queue.
        while events.count >= capacity || (!events.isEmpty && queuedBytes + size > byteCapacity) {
            producerWaits = true
            pthread_cond_signal(changed)
            pthread_cond_wait(changed, lock)
        }
        events.append(event)
        queuedBytes += size
        if recorderSleeps || events.count >= capacity / 2 || queuedBytes >= byteCapacity / 2 { pthread_cond_signal(changed) }
        pthread_mutex_unlock(lock)
    }

    /// No more events will come.
    func close() {
        pthread_mutex_lock(lock)
        closed = true
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(lock)
    }

    /// Moves every queued event into `batch` (empty on entry), waiting while there is
    /// none; false once the queue is closed and empty.
    func take(into batch: inout [AuditEvent]) -> Bool {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        var gathered = false
        while events.isEmpty && !closed {
            if gathered {
                // The last millisecond brought nothing: sleep until the producer says.
                recorderSleeps = true
                pthread_cond_wait(changed, lock)
                recorderSleeps = false
            } else {
                var deadline = timespec()
                clock_gettime(CLOCK_MONOTONIC, &deadline)
                deadline.tv_nsec += 1_000_000
                if deadline.tv_nsec >= 1_000_000_000 { deadline.tv_sec += 1; deadline.tv_nsec -= 1_000_000_000 }
                _ = pthread_cond_timedwait(changed, lock, &deadline)
                gathered = true
            }
        }
        if events.isEmpty { return false }
        swap(&batch, &events)
        queuedBytes = 0
        if producerWaits {
            producerWaits = false
            pthread_cond_broadcast(changed)
        }
        return true
    }
}

/// Syscall names and sandbox pids, looked up once each.
struct NameCache {
    private var names: [Int32: String] = [:]
    private var pids: [pid_t: Int32] = [:]

    mutating func name(_ nr: Int32) -> String {
        if let known = names[nr] { return known }
        let name = SeccompCompiler.syscallName(nr) ?? "syscall_\(nr)"
        names[nr] = name
        return name
    }

    /// The pid inside the sandbox: the last NSpid of /proc/PID/status.
    mutating func sandboxPid(_ pid: pid_t) -> Int32 {
        if let known = pids[pid] { return known }
        var inside = Int32(pid)
        if let bytes = HostFiles.read("/proc/\(pid)/status", limit: 1 << 16) {
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("NSpid:") {
                if let last = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).last, let value = Int32(last) {
                    inside = value
                }
            }
        }
        pids[pid] = inside
        return inside
    }
}

/// Reads a notified process's arguments: strings up to 4 KiB, argv up to
/// 256 entries and 64 KiB in all, socket addresses up to 128 bytes.
struct ArgumentDecoder {
    let pid: pid_t
    static let stringLimit = 4096
    static let argvEntries = 256
    static let argvBytes = 65536

    func decode(_ syscall: String, _ args: [UInt64]) -> AuditArguments {
        switch syscall {
        case "execve": return .exec(path: string(args[0]), argv: argv(args[1]))
        case "execveat": return .exec(path: string(args[1]), argv: argv(args[2]))
        case "connect", "bind": return address(args[1], length: args[2])
        case "sendto": return address(args[4], length: args[5])
        case "openat": return .open(path: string(args[1]), flags: Self.openFlags(args[2]))
        case "open": return .open(path: string(args[0]), flags: Self.openFlags(args[1]))
        case "creat": return .open(path: string(args[0]), flags: ["O_CREAT", "O_WRONLY", "O_TRUNC"])
        case "socket": return .socket(family: Self.family(Int32(truncatingIfNeeded: args[0])), type: Int(args[1] & 0xf))
        default: return .values(args)
        }
    }

    func bytes(_ address: UInt64, _ length: Int) -> [UInt8] {
        guard address != 0, length > 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: length)
        let n = buffer.withUnsafeMutableBytes { stk_read_memory(pid, address, $0.baseAddress, length) }
        return n > 0 ? Array(buffer[0..<n]) : []
    }

    /// A NUL-terminated string, read in small pieces that never cross a page
    /// (a string may end just before an unmapped page); most paths fit the
    /// first, which then costs one read and no buffer but the string's own.
    func string(_ address: UInt64) -> String {
        let piece = 256
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: piece) { buffer in
            var out: [UInt8] = []
            var cursor = address
            while out.count < Self.stringLimit, cursor != 0 {
                let length = min(4096 - Int(cursor % 4096), piece, Self.stringLimit - out.count)
                let n = stk_read_memory(pid, cursor, buffer.baseAddress, length)
                guard n > 0 else { break }
                let chunk = UnsafeBufferPointer(rebasing: buffer[0..<n])
                if let end = chunk.firstIndex(of: 0) {
                    if out.isEmpty { return String(decoding: UnsafeBufferPointer(rebasing: chunk[..<end]), as: UTF8.self) }
                    out += chunk[..<end]
                    break
                }
                out += chunk
                cursor &+= UInt64(n)
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    func argv(_ address: UInt64) -> [String] {
        var out: [String] = []
        var total = 0
        var slot = address
        while out.count < Self.argvEntries, total < Self.argvBytes, slot != 0 {
            let raw = bytes(slot, 8)
            guard raw.count == 8 else { break }
            let pointer = raw.withUnsafeBytes { $0.load(as: UInt64.self) }
            if pointer == 0 { break }
            let value = string(pointer)
            total += value.utf8.count
            out.append(value)
            slot += 8
        }
        return out
    }

    func address(_ pointer: UInt64, length: UInt64) -> AuditArguments {
        let raw = bytes(pointer, Int(min(length, 128)))
        guard raw.count >= 2 else { return .address(family: "none", address: nil, port: nil, path: nil) }
        let family = Int32(raw[0]) | Int32(raw[1]) << 8
        switch family {
        case AF_INET where raw.count >= 8:
            let port = Int(raw[2]) << 8 | Int(raw[3])
            return .address(family: "inet", address: raw[4..<8].map(String.init).joined(separator: "."), port: port, path: nil)
        case AF_INET6 where raw.count >= 24:
            let port = Int(raw[2]) << 8 | Int(raw[3])
            let groups = stride(from: 8, to: 24, by: 2).map { String(Int(raw[$0]) << 8 | Int(raw[$0 + 1]), radix: 16) }
            return .address(family: "inet6", address: groups.joined(separator: ":"), port: port, path: nil)
        case AF_UNIX:
            let path = raw.dropFirst(2)
            if path.first == 0 {
                return .address(family: "unix", address: nil, port: nil,
                                path: "@" + String(decoding: path.dropFirst().prefix { $0 != 0 }, as: UTF8.self))
            }
            return .address(family: "unix", address: nil, port: nil, path: String(decoding: path.prefix { $0 != 0 }, as: UTF8.self))
        default:
            return .address(family: Self.family(family), address: nil, port: nil, path: nil)
        }
    }

    static func family(_ value: Int32) -> String {
        switch value {
        case AF_UNIX: "unix"
        case AF_INET: "inet"
        case AF_INET6: "inet6"
        case AF_NETLINK: "netlink"
        case AF_PACKET: "packet"
        default: String(value)
        }
    }

    static func openFlags(_ value: UInt64) -> [String] {
        let flags = Int32(truncatingIfNeeded: value)
        var names: [String] = []
        switch flags & O_ACCMODE {
        case O_WRONLY: names.append("O_WRONLY")
        case O_RDWR: names.append("O_RDWR")
        default: names.append("O_RDONLY")
        }
        for (flag, name) in [(O_CREAT, "O_CREAT"), (O_TRUNC, "O_TRUNC"), (O_APPEND, "O_APPEND"), (O_EXCL, "O_EXCL")]
            where flags & flag != 0 {
            names.append(name)
        }
        return names
    }
}

/// Audit events as JSON Lines in a file the caller opened for appending,
/// written in blocks so a write is not on the path of the next notification.
/// What one run appends is capped in bytes and in events per second; an event
/// over either cap is dropped and counted, and ``finish(time:)`` ends the log
/// with one `dropped` record that says how many, within the byte cap.
public final class AuditLog: AuditSink {
    public struct Limits: Sendable, Equatable {
        public var maxBytes: UInt64
        public var maxEventsPerSecond: UInt64

        public static let standard = Limits(maxBytes: 64 << 20, maxEventsPerSecond: 10_000)
        /// The room kept for the final record: the byte cap may not be smaller.
        public static let reserved: UInt64 = 512

        public init(maxBytes: UInt64, maxEventsPerSecond: UInt64) {
            self.maxBytes = maxBytes
            self.maxEventsPerSecond = maxEventsPerSecond
        }
    }

    private struct State {
        var bytes: [UInt8] = []
        var failed = false
        var appended: UInt64 = 0
        var second: Int64 = -1
        var inSecond: UInt64 = 0
        var droppedBySize = 0
        var droppedByRate = 0
        var lines = LineWriter()
    }

    let fd: Int32
    public let limits: Limits
    private let pending = Mutex<State>(State())
    static let block = 64 << 10

    public init(fd: Int32, limits: Limits = .standard) {
        self.fd = fd
        self.limits = limits
    }

    public func record(_ event: AuditEvent) -> AuditRecording {
        let second = monotonicMicroseconds() / 1_000_000
        return pending.withLock { state in
            if state.second != second {
                state.second = second
                state.inSecond = 0
            }
            guard state.inSecond < limits.maxEventsPerSecond else {
                state.droppedByRate += 1
                return .dropped
            }
            // Written in place and taken back when over the cap: no line is built on its own.
            let start = state.bytes.count
            state.lines.append(event, to: &state.bytes)
            state.bytes.append(0x0A)
            let length = UInt64(state.bytes.count - start)
            guard state.appended + length + Limits.reserved <= limits.maxBytes else {
                state.bytes.removeSubrange(start...)
                state.droppedBySize += 1
                return .dropped
            }
            state.inSecond += 1
            state.appended += length
            if state.bytes.count >= Self.block { state.failed = !write(&state.bytes) || state.failed }
            return state.failed ? .failed : .kept
        }
    }

    public func flush() -> Bool {
        pending.withLock { state in
            state.failed = !write(&state.bytes) || state.failed
            return !state.failed
        }
    }

    /// Events dropped so far by the byte cap and by the rate cap.
    public var dropped: (bySize: Int, byRate: Int) {
        pending.withLock { ($0.droppedBySize, $0.droppedByRate) }
    }

    /// Writes what is pending and, when events were dropped, the final `dropped` record.
    /// False when a write failed.
    public func finish() -> Bool {
        let time = NotificationServer.now()
        return pending.withLock { state in
            if state.droppedBySize + state.droppedByRate > 0 {
                state.bytes += Array((Self.droppedRecord(time: time, bySize: state.droppedBySize,
                                                         byRate: state.droppedByRate, limits: limits) + "\n").utf8)
            }
            state.failed = !write(&state.bytes) || state.failed
            return !state.failed
        }
    }

    private func write(_ bytes: inout [UInt8]) -> Bool {
        defer { bytes.removeAll(keepingCapacity: true) }
        do {
            try FileDescriptor(rawValue: fd).writeAll(bytes)
            return true
        } catch {
            return false
        }
    }

    /// The log's last line when its caps dropped events (`"type": "dropped"` in the schema).
    static func droppedRecord(time: Int64, bySize: Int, byRate: Int, limits: Limits) -> String {
        "{\"type\":\"dropped\",\"time\":\(quote(timestamp(time))),\"dropped\":\(bySize + byRate),"
            + "\"droppedBySize\":\(bySize),\"droppedByRate\":\(byRate),"
            + "\"maxBytes\":\(limits.maxBytes),\"maxEventsPerSecond\":\(limits.maxEventsPerSecond)}"
    }

    public static func json(_ event: AuditEvent) -> String {
        var bytes: [UInt8] = []
        var lines = LineWriter()
        lines.append(event, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// RFC 3339, UTC, microseconds.
    static func timestamp(_ microseconds: Int64) -> String {
        var seconds = time_t(microseconds / 1_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let fraction = String(microseconds % 1_000_000)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T" +
            "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))." +
            String(repeating: "0", count: 6 - fraction.count) + fraction + "Z"
    }

    static func quote(_ text: String) -> String { JSONText.quote(text) }

    /// Writes events as JSON bytes, the recorder's work per event. It keeps what repeats from
    /// one event to the next: the timestamp's date and time to the second, and the sandbox
    /// and label fields (one sandbox's events come in runs).
    struct LineWriter {
        private var second = Int64.min
        private var secondText: [UInt8] = []
        private var sandbox = ""
        private var labels: [String: String] = [:]
        private var sandboxFields: [UInt8] = []

        mutating func append(_ event: AuditEvent, to out: inout [UInt8]) {
            let second = event.time >= 0 ? event.time / 1_000_000 : (event.time + 1) / 1_000_000 - 1
            if second != self.second || secondText.isEmpty {
                self.second = second
                let text = AuditLog.timestamp(second * 1_000_000)
                secondText = Array(text.utf8.dropLast(7))  // "YYYY-MM-DDTHH:MM:SS."
            }
            if sandboxFields.isEmpty || event.sandbox != sandbox || event.labels != labels {
                sandbox = event.sandbox
                labels = event.labels
                sandboxFields = Array("\"sandbox\":\(AuditLog.quote(event.sandbox))".utf8)
                for (key, value) in event.labels.sorted(by: { $0.key < $1.key }) {
                    sandboxFields += Array(",\(quote(key)):\(quote(value))".utf8)
                }
            }
            out += #"{"time":""#.utf8
            out += secondText
            let fraction = Int(event.time - second * 1_000_000)
            var divisor = 100_000
            while divisor > 0 {
                out.append(UInt8(48 + fraction / divisor % 10))
                divisor /= 10
            }
            out += #"Z","#.utf8
            out += sandboxFields
            out += #","pid":"#.utf8
            out += String(event.pid).utf8
            out += #","syscall":"#.utf8
            Self.quoted(event.syscall, to: &out)
            out += #","args":"#.utf8
            Self.arguments(event.arguments, to: &out)
            switch event.outcome {
            case .allowed:
                out += #","outcome":"allowed"}"#.utf8
            case .denied(let code):
                out += #","outcome":"denied","errno":"#.utf8
                out += String(code).utf8
                out += #","errnoName":"#.utf8
                Self.quoted(ErrorNumber.name(code), to: &out)
                out.append(0x7D)
            }
        }

        static func arguments(_ arguments: AuditArguments, to out: inout [UInt8]) {
            switch arguments {
            case .exec(let path, let argv):
                out += #"{"path":"#.utf8
                quoted(path, to: &out)
                out += #","argv":"#.utf8
                list(argv, to: &out)
            case .address(let family, let address, let port, let path):
                out += #"{"family":"#.utf8
                quoted(family, to: &out)
                if let address {
                    out += #","address":"#.utf8
                    quoted(address, to: &out)
                }
                if let port {
                    out += #","port":"#.utf8
                    out += String(port).utf8
                }
                if let path {
                    out += #","path":"#.utf8
                    quoted(path, to: &out)
                }
            case .open(let path, let flags):
                out += #"{"path":"#.utf8
                quoted(path, to: &out)
                out += #","flags":"#.utf8
                list(flags, to: &out)
            case .socket(let family, let type):
                out += #"{"family":"#.utf8
                quoted(family, to: &out)
                out += #","type":"#.utf8
                out += String(type).utf8
            case .values(let values):
                out += #"{"values":["#.utf8
                for (index, value) in values.enumerated() {
                    if index > 0 { out.append(0x2C) }
                    out += String(value).utf8
                }
                out.append(0x5D)
            }
            out.append(0x7D)
        }

        static func list(_ items: [String], to out: inout [UInt8]) {
            out.append(0x5B)
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(0x2C) }
                quoted(item, to: &out)
            }
            out.append(0x5D)
        }

        /// ``quote(_:)``'s bytes; a string with nothing to escape, nearly every one, is copied as it is.
        static func quoted(_ text: String, to out: inout [UInt8]) {
            var plain = true
            for byte in text.utf8 where byte < 0x20 || byte == 0x22 || byte == 0x5C || byte == 0x7F {
                plain = false
                break
            }
            guard plain else { return out += AuditLog.quote(text).utf8 }
            out.append(0x22)
            out += text.utf8
            out.append(0x22)
        }
    }
}

import CLinux
import CSandbox
import Glibc
import Synchronization
import SystemPackage

/// A copy of this process forked at start, while it is small and has one thread, that
/// clones the namespaced sandboxes for it. A clone from the supervisor copies the page
/// tables of a multithreaded process that has grown and marks them copy-on-write under
/// every running thread (a TLB shootdown on each core per fault); a clone from the
/// zygote copies almost nothing. The sandboxes are still the supervisor's children
/// (CLONE_PARENT): it waits for them by pidfd, and their parent-death signal follows
/// its main thread, which forked the zygote. Their pid 1 is a copy of the zygote, so
/// holds none of what the supervisor read since (credentials, other buildpacks' plans).
///
/// The plan travels whole: the C arena's bytes, moved to the zygote's buffer with every
/// pointer checked to lie inside it, and its descriptors by SCM_RIGHTS. Audited sandboxes
/// (the listener's handoff address is compiled into their filter) and those without
/// namespaces are cloned by the supervisor as before, as is every sandbox when the zygote
/// is gone.
///
/// With a subordinate range, the first sandbox moves the zygote into a user namespace of the
/// run's, which newuidmap and newgidmap map once; every sandbox then gets a user namespace of
/// its own nested in it, whose maps the zygote writes: no helper execs per sandbox. The ids
/// are the same on the host; sibling namespaces hold no capability over each other, and the
/// supervisor, which owns the run's namespace, still signals every sandbox.
public enum Zygote {
    /// The supervisor's end of the control socket; -1 without a zygote. Held while one
    /// request is answered: the zygote serves one at a time.
    private static let channel = Mutex<Int32>(-1)
    /// The mapping of the run's user namespace once the zygote is in one: at most one entry.
    /// Taken only inside `channel`'s lock. Not one Mutex of a struct of the three: swiftc 6.3.1
    /// folds such a static's initializer (an Int32 of -1, an optional struct, a Bool) to zeros
    /// in release builds, so the socket read 0 and no zygote was ever used.
    private static let nestedMapping = Mutex<[IdentityMapping]>([])
    private static let triedNesting = Atomic<Bool>(false)

    /// What the supervisor asks.
    enum Operation: UInt64 {
        case spawn = 1
        /// Leave for a new user namespace; the buffer holds the nested uid and gid maps.
        case enterUserNamespace = 2
    }
    /// Reaped at exit: a zombie handed to an init that is slow to reap lingers.
    private static let process = Atomic<Int32>(0)

    /// The effective ids the zygote has: sandboxes are cloned with them, so a supervisor
    /// that has changed its own since clones for itself.
    private static let identity = Atomic<UInt64>(0)

    /// Forks the zygote. Only once this process has the ids its sandboxes are to be made
    /// with, before it starts a second thread, and where it will start several sandboxes:
    /// the fork costs about what one clone saves.
    public static func start() {
        // Field 20 of /proc/self/stat: the number of threads.
        guard Supervisor.ownStat()(20) == 1, channel.withLock({ $0 < 0 }) else { return }
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else { return }
        // Started with 0, 1 or 2 closed: the zygote puts /dev/null there, so its socket may not be.
        guard fds[0] > 2, fds[1] > 2 else {
            fds.forEach { _ = Glibc.close($0) }
            return
        }
        let supervisor = getpid()
        let pid = fork()
        if pid == 0 {
            _ = Glibc.close(fds[0])
            serve(fds[1], supervisor: supervisor)
        }
        _ = Glibc.close(fds[1])
        if pid < 0 {
            _ = Glibc.close(fds[0])
            return
        }
        identity.store(currentIdentity(), ordering: .relaxed)
        channel.withLock { $0 = fds[0] }
        process.store(pid, ordering: .relaxed)
        atexit { Zygote.stop() }
    }

    /// The zygote's pid while it runs.
    public static var processID: pid_t? {
        let pid = process.load(ordering: .relaxed)
        return pid > 0 ? pid : nil
    }

    /// Not through the socket: a thread may hold it, mid-request, while the process exits.
    private static func stop() {
        let pid = process.exchange(0, ordering: .relaxed)
        guard pid > 0, kill(pid, SIGKILL) == 0 else { return }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    enum Outcome {
        /// No zygote, or this plan cannot go to one: the caller clones.
        case unavailable
        /// `mapped`: the zygote wrote the maps (a nested user namespace).
        case spawned(pid_t, mapped: Bool)
        /// The zygote's clone failed with this errno.
        case refused(Int32)
        /// The request went out and no answer came: a clone may have happened.
        case lost(Int32)
    }

    /// Asks the zygote to clone `plan`, whose pointers all lie in `arena`, with `mapping`.
    static func spawn(_ plan: stk_spawn_plan, arena: CArena, mapping: IdentityMapping, pidfd: inout Int32) -> Outcome {
        guard plan.namespaced != 0, plan.audit_listener == 0, arena.contiguous,
              identity.load(ordering: .relaxed) == currentIdentity() else { return .unavailable }
        // A descriptor left to inheritance is this process's own, which the zygote's
        // 0, 1 and 2 need not be: it goes over by number.
        var passed: [Int32] = []
        for (slot, fd) in [plan.stdio.0, plan.stdio.1, plan.stdio.2].enumerated() {
            // One the plan names is open; an inherited one may not be (then the caller clones).
            guard fd >= 0 || fcntl(Int32(slot), F_GETFD) >= 0 else { return .unavailable }
            passed.append(fd >= 0 ? fd : Int32(slot))
        }
        passed.append(plan.sync_fd)

        return channel.withLock { socket -> Outcome in
            guard socket >= 0 else { return .unavailable }
            // Once: the maps are built only for the first sandbox (the lock orders the flag).
            if !triedNesting.load(ordering: .relaxed), let maps = mapping.nestedMaps {
                triedNesting.store(true, ordering: .relaxed)
                nest(&socket, mapping: mapping, maps: maps)
                guard socket >= 0 else { return .unavailable }
            }
            // Nested, it clones only for its run's mapping: it cannot reach the host's ids.
            let nested = nestedMapping.withLock { $0.first }
            guard nested == nil || nested == mapping else { return .unavailable }
            var plan = plan
            let exchanged = exchange(&socket, .spawn, plan: &plan, origin: UInt64(UInt(bitPattern: arena.base)),
                                     payload: UnsafeRawBufferPointer(start: arena.base, count: arena.used), passing: passed)
            switch exchanged {
            case .notSent:
                return .unavailable
            case .lost(let error):
                return .lost(error)
            case .answered(let pid, let error, let carried):
                if pid > 0 && error == EPROTO {
                    // Cloned and killed unmapped: reaped here, this sandbox cloned by the caller.
                    var status: Int32 = 0
                    var usage = stk_rusage()
                    if carried >= 0 { _ = stk_wait_pidfd(carried, &status, &usage); _ = Glibc.close(carried) }
                    return .unavailable
                }
                guard pid > 0 else { return error == EPROTO ? .unavailable : .refused(error) }
                pidfd = carried
                return .spawned(pid, mapped: nested != nil)
            }
        }
    }

    /// Moves the zygote into a user namespace for this run's sandboxes and has the helpers map
    /// it. A zygote left in a namespace without maps can clone nothing: it is given up.
    private static func nest(_ socket: inout Int32, mapping: IdentityMapping, maps: (uid: String, gid: String)) {
        guard let pid = processID else { return }
        let text = Array(maps.uid.utf8) + [0] + Array(maps.gid.utf8) + [0]
        var plan = stk_spawn_plan()
        let outcome = text.withUnsafeBytes { bytes in
            exchange(&socket, .enterUserNamespace, plan: &plan, origin: 0, payload: bytes, passing: [])
        }
        guard case .answered(let answer, _, let carried) = outcome else { return }
        if carried >= 0 { _ = Glibc.close(carried) }
        // Refused (user.max_user_namespaces, say): it stays where it was and clones as before.
        guard answer == 0 else { return }
        do {
            try mapping.mapRunNamespace(of: pid)
            nestedMapping.withLock { $0 = [mapping] }
        } catch {
            _ = Glibc.close(socket)
            socket = -1
        }
    }

    enum Exchange {
        case notSent
        case lost(Int32)
        /// The zygote's pid (or 0) and errno, and the descriptor it sent or -1.
        case answered(pid: Int32, error: Int32, descriptor: Int32)
    }

    /// One request and its answer. A socket found broken is closed and set to -1.
    private static func exchange(_ socket: inout Int32, _ operation: Operation, plan: inout stk_spawn_plan, origin: UInt64,
                                 payload: UnsafeRawBufferPointer, passing passed: [Int32]) -> Exchange {
        var op = operation.rawValue
        var origin: (base: UInt64, used: UInt64) = (origin, UInt64(payload.count))
        let sent = withRequestParts(&op, &plan, &origin, UnsafeMutableRawPointer(mutating: payload.baseAddress), payload.count) { parts in
            stk_send_with_fds(socket, &parts, parts.count, passed, passed.count)
        }
        guard sent >= 0 else {
            // Nothing reached it. Gone: every later sandbox is cloned here; else only this one.
            if [EPIPE, ECONNRESET, ENOTCONN].contains(Errno.current.rawValue) {
                _ = Glibc.close(socket)
                socket = -1
            }
            return .notSent
        }
        var answer: (pid: Int32, error: Int32) = (-1, 0)
        var received = [Int32](repeating: -1, count: Int(STK_PASSED_FDS_MAX))
        var count = 0
        let length = withUnsafeMutableBytes(of: &answer) { answerBytes in
            var part = iovec(iov_base: answerBytes.baseAddress, iov_len: answerBytes.count)
            return stk_receive_with_fds(socket, &part, 1, &received, &count)
        }
        let error = length < 0 ? Errno.current.rawValue : EPIPE
        let carried = received.prefix(count)
        guard length == MemoryLayout.size(ofValue: answer), answer.pid <= 0 || count == 1 else {
            carried.forEach { _ = Glibc.close($0) }
            _ = Glibc.close(socket)
            socket = -1
            return .lost(error)
        }
        return .answered(pid: answer.pid, error: answer.error, descriptor: carried.first ?? -1)
    }

    // MARK: - the zygote's side

    private static func serve(_ socket: Int32, supervisor: pid_t) -> Never {
        // It ends with the supervisor, whatever ends that; EOF on the socket says the same.
        guard clinux_kill_on_parent_death() == 0, getppid() == supervisor else { _exit(0) }
        _ = clinux_set_process_name("stockade-zygote")
        // Signals for the supervisor (a terminal's ^C reaches the whole group) are its to act on.
        var blocked = sigset_t()
        sigfillset(&blocked)
        sigprocmask(SIG_SETMASK, &blocked, nil)
        // Nothing of the invoker's is kept open; 0, 1 and 2 stay taken so no descriptor
        // received lands there.
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        if null >= 0 { for fd: Int32 in 0...2 where fd != null { _ = dup2(null, fd) } }
        let keep = socket
        if keep > 3 { _ = clinux_close_range(3, UInt32(keep - 1)) }
        _ = clinux_close_range(UInt32(keep + 1), UInt32.max)

        let buffer = UnsafeMutableRawPointer.allocate(byteCount: CArena.capacity, alignment: 16)
        var fds = [Int32](repeating: -1, count: Int(STK_PASSED_FDS_MAX))
        // The maps each sandbox's namespace gets, once this process is in the run's.
        var nestedMaps: (uid: String, gid: String)?
        while true {
            var op: UInt64 = 0
            var plan = stk_spawn_plan()
            var origin: (base: UInt64, used: UInt64) = (0, 0)
            var count = 0
            let length = withRequestParts(&op, &plan, &origin, buffer, CArena.capacity) { parts in
                stk_receive_with_fds(socket, &parts, parts.count, &fds, &count)
            }
            if length == 0 { _exit(0) }
            // EPROTO, which clone never returns: this request, not the kernel, was refused.
            var answer: (pid: Int32, error: Int32) = (-1, EPROTO)
            var pidfd: Int32 = -1
            if length > 0 {
                let header = MemoryLayout.size(ofValue: op) + MemoryLayout<stk_spawn_plan>.size + MemoryLayout.size(ofValue: origin)
                let used = length - header
                if used >= 0, origin.used == UInt64(used) {
                    switch Operation(rawValue: op) {
                    case .spawn:
                        var request = Request(plan: plan, origin: UInt(truncatingIfNeeded: origin.base), used: used, buffer: buffer)
                        if request.relocate(descriptors: Array(fds.prefix(count))) {
                            // The child closes its copy of the control socket first thing.
                            let pid = stk_spawn(&request.plan, socket, &pidfd, 1)
                            answer = pid > 0 ? (pid, 0) : (-1, Errno.current.rawValue)
                            if pid > 0, let maps = nestedMaps, !writeMaps(maps, for: pid) {
                                // Unmapped, it could do nothing. Killed, and sent back with EPROTO
                                // (not a clone errno, which could read as "no user namespaces"): the
                                // supervisor reaps it and clones that sandbox itself.
                                _ = stk_pidfd_send_signal(pidfd, SIGKILL)
                                answer = (pid, EPROTO)
                            }
                        }
                    case .enterUserNamespace:
                        let text = UnsafeRawBufferPointer(start: buffer, count: used)
                        let parts = text.split(separator: 0, omittingEmptySubsequences: false)
                        if nestedMaps == nil, count == 0, parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty, parts[2].isEmpty {
                            answer = clinux_unshare_user_namespace() == 0 ? (0, 0) : (-1, Errno.current.rawValue)
                            if answer.pid == 0 { nestedMaps = (String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self)) }
                        }
                    case nil:
                        break
                    }
                }
                // The next sandbox's pid 1 gets a copy of this buffer: nothing of this one stays.
                memset(buffer, 0, max(used, 0))
            } else if Errno.current.rawValue != EMSGSIZE {
                _exit(0)
            }
            // The sandbox holds its own copies; the supervisor sees EOF when it ends.
            for fd in fds.prefix(count) { _ = Glibc.close(fd) }
            let sent = withUnsafeMutableBytes(of: &answer) { answerBytes in
                var part = iovec(iov_base: answerBytes.baseAddress, iov_len: answerBytes.count)
                return stk_send_with_fds(socket, &part, 1, [pidfd], pidfd >= 0 ? 1 : 0)
            }
            if pidfd >= 0 { _ = Glibc.close(pidfd) }
            if sent < 0 { _exit(0) }
        }
    }

    /// A request's parts, as sent and as received: the operation, the plan, the arena's address
    /// and length in the supervisor, and the payload (the arena's bytes, or the nested maps).
    private static func withRequestParts<Result>(_ op: inout UInt64, _ plan: inout stk_spawn_plan, _ origin: inout (base: UInt64, used: UInt64),
                                                 _ payload: UnsafeMutableRawPointer?, _ payloadLength: Int,
                                                 _ body: (inout [iovec]) -> Result) -> Result {
        withUnsafeMutableBytes(of: &op) { opBytes in
            withUnsafeMutableBytes(of: &plan) { planBytes in
                withUnsafeMutableBytes(of: &origin) { originBytes in
                    var parts = [iovec(iov_base: opBytes.baseAddress, iov_len: opBytes.count),
                                 iovec(iov_base: planBytes.baseAddress, iov_len: planBytes.count),
                                 iovec(iov_base: originBytes.baseAddress, iov_len: originBytes.count),
                                 iovec(iov_base: payload, iov_len: payloadLength)]
                    return body(&parts)
                }
            }
        }
    }

    /// Writes a nested sandbox's maps, gid first as the helpers do.
    private static func writeMaps(_ maps: (uid: String, gid: String), for pid: pid_t) -> Bool {
        do {
            try IdentityMapping.write(maps.gid, to: "/proc/\(pid)/gid_map")
            try IdentityMapping.write(maps.uid, to: "/proc/\(pid)/uid_map")
            return true
        } catch {
            return false
        }
    }

    /// A plan whose pointers hold the supervisor's addresses, moved onto this process's copy
    /// of the arena; nothing outside the `used` bytes it came with is accepted.
    struct Request {
        var plan: stk_spawn_plan
        let origin: UInt
        let used: Int
        let buffer: UnsafeMutableRawPointer

        private func moved<T>(_ pointer: UnsafePointer<T>?, count: Int) -> UnsafePointer<T>?? {
            guard let pointer else { return .some(nil) }
            let offset = UInt(bitPattern: pointer) &- origin
            guard offset < UInt(used), count >= 0, count <= (used - Int(offset)) / MemoryLayout<T>.stride,
                  Int(offset) % MemoryLayout<T>.alignment == 0 else { return nil }
            return .some(UnsafePointer((buffer + Int(offset)).assumingMemoryBound(to: T.self)))
        }

        private func movedString(_ pointer: UnsafePointer<CChar>?) -> UnsafePointer<CChar>?? {
            guard let pointer else { return .some(nil) }
            let offset = UInt(bitPattern: pointer) &- origin
            guard offset < UInt(used), memchr(buffer + Int(offset), 0, used - Int(offset)) != nil else { return nil }
            return .some(UnsafePointer((buffer + Int(offset)).assumingMemoryBound(to: CChar.self)))
        }

        /// A NULL-terminated array of strings, `count` entries before the NULL when known.
        private func movedStrings(_ pointer: UnsafePointer<UnsafePointer<CChar>?>?, count: Int?) -> UnsafePointer<UnsafePointer<CChar>?>?? {
            guard let pointer else { return .some(nil) }
            let offset = UInt(bitPattern: pointer) &- origin
            let stride = MemoryLayout<UnsafePointer<CChar>?>.stride
            guard offset < UInt(used), Int(offset) % stride == 0 else { return nil }
            let slots = (used - Int(offset)) / stride
            let array = (buffer + Int(offset)).assumingMemoryBound(to: UnsafePointer<CChar>?.self)
            var index = 0
            while true {
                guard index < slots else { return nil }
                guard let entry = array[index] else { break }
                guard let moved = movedString(entry) else { return nil }
                array[index] = moved
                index += 1
            }
            if let count, index != count { return nil }
            return .some(UnsafePointer(array))
        }

        private func movedFilter(_ filter: stk_bpf) -> stk_bpf? {
            guard filter.count > 0 else { return filter }
            guard let moved = moved(filter.instructions.map { $0.assumingMemoryBound(to: UInt64.self) }, count: Int(filter.count)) else { return nil }
            var result = filter
            result.instructions = UnsafeRawPointer(moved)
            return result
        }

        /// Moves every pointer and puts the received descriptors in their places: 0, 1, 2,
        /// then the sync socket. False when anything does not fit.
        mutating func relocate(descriptors: [Int32]) -> Bool {
            guard plan.namespaced != 0, plan.audit_listener == 0, plan.handoff_message == nil,
                  plan.readable_paths == nil, descriptors.count == 4 else { return false }
            guard let hostname = movedString(plan.hostname),
                  let staging = movedString(plan.staging),
                  let workdir = movedString(plan.workdir),
                  let searchPath = movedString(plan.search_path),
                  let argv = movedStrings(plan.argv, count: nil),
                  let envp = movedStrings(plan.envp, count: nil),
                  let writable = movedStrings(plan.writable_paths, count: plan.writable_count),
                  let mounts = moved(plan.mounts, count: plan.mount_count),
                  let scratch = moved(plan.scratch_fds.map { UnsafePointer($0) }, count: max(plan.mount_count, 1)),
                  let rlimits = moved(plan.rlimits, count: plan.rlimit_count),
                  let profile = movedFilter(plan.profile),
                  let baseline = movedFilter(plan.baseline),
                  let initFilter = movedFilter(plan.init_filter),
                  argv != nil, envp != nil, workdir != nil else { return false }
            if let mounts {
                let steps = UnsafeMutablePointer(mutating: mounts)
                for i in 0..<plan.mount_count {
                    guard let source = movedString(steps[i].source), let dest = movedString(steps[i].dest) else { return false }
                    let data: UnsafePointer<CChar>??
                    if steps[i].kind == STK_MOUNT_FILE.rawValue {
                        data = moved(steps[i].data, count: steps[i].data_len)
                    } else {
                        data = movedString(steps[i].data)
                    }
                    guard let data else { return false }
                    steps[i].source = source
                    steps[i].dest = dest
                    steps[i].data = data
                }
            }
            plan.hostname = hostname
            plan.staging = staging
            plan.workdir = workdir
            plan.search_path = searchPath
            plan.argv = argv
            plan.envp = envp
            plan.writable_paths = writable
            plan.mounts = mounts
            plan.scratch_fds = scratch.map { UnsafeMutablePointer(mutating: $0) }
            plan.rlimits = rlimits
            plan.profile = profile
            plan.baseline = baseline
            plan.init_filter = initFilter
            plan.stdio = (descriptors[0], descriptors[1], descriptors[2])
            plan.sync_fd = descriptors[3]
            return true
        }
    }

    private static func currentIdentity() -> UInt64 { UInt64(geteuid()) << 32 | UInt64(getegid()) }
}

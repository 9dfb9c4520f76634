import CSeccomp
import Glibc
import Testing
@testable import Seccomp
import JSON

/// Filters as a sandbox stacks them (the baseline first, the profile last), installed in array order.
enum FilterStack: String, Codable, Sendable {
    case none
    case baseline
    case defaultProfile
    case baselineAndDefault
    case strict
    case baselineAndStrict
    case initFilter
    /// Under the baseline, a profile giving clone3 EPERM and mount EOPNOTSUPP.
    case baselineAndOwnErrnos
    /// A profile that kills on clone3.
    case clone3Kills

    func programs() throws -> [BPFProgram] {
        func builtin(_ name: String) throws -> BPFProgram {
            try SeccompCompiler.compile(SeccompProfile.builtin(name)!).program
        }
        func profile(_ json: String) throws -> BPFProgram {
            try SeccompCompiler.compile(SeccompProfile.parse(Array(json.utf8), origin: "test")).program
        }
        return switch self {
        case .none: []
        case .baseline: [try SeccompCompiler.hardeningBaseline]
        case .defaultProfile: [try builtin("default")]
        case .baselineAndDefault: [try SeccompCompiler.hardeningBaseline, try builtin("default")]
        case .strict: [try builtin("strict")]
        case .baselineAndStrict: [try SeccompCompiler.hardeningBaseline, try builtin("strict")]
        case .initFilter: [try SeccompCompiler.initFilter]
        case .baselineAndOwnErrnos: [try SeccompCompiler.hardeningBaseline, try profile("""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO"},
              {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95}]}
            """)]
        case .clone3Kills: [try profile("""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["clone3"], "action": "SCMP_ACT_KILL_PROCESS"}]}
            """)]
        }
    }
}

/// One raw syscall, with arguments chosen so that, unfiltered, it fails harmlessly with an
/// errno other than EPERM (or succeeds harmlessly): a filter's answer is then unmistakable.
enum Probe: String, Codable, Sendable {
    case getpid
    case openatRoot  // openat(AT_FDCWD, "/", O_RDONLY)
    case clone3  // clone3(NULL, 0): EINVAL
    case cloneNewUser  // clone(CLONE_NEWUSER | SIGCHLD): only ever run where it is refused
    case unshareNewUser
    case unshareNewNet
    case unshareFiles  // CLONE_FILES: no namespace, allowed by the baseline
    case setns  // setns(-1, 0): EBADF
    case tiocstiHighBits  // ioctl(-1, TIOCSTI | 1 << 32, &c): EBADF
    case tiocgwinsz  // ioctl(-1, TIOCGWINSZ, &ws): EBADF
    case ioUringSetup  // io_uring_setup(0, NULL): EFAULT
    case mount  // mount(NULL, (char *)1, NULL, 0, NULL): EFAULT
    case keyctl  // keyctl(9999): EOPNOTSUPP
    case ptrace  // ptrace(PTRACE_PEEKDATA, no such pid): ESRCH
    case socketInet
    case socketInet6
    case socketUnix
    case socketNetlinkRoute
    case socketNetlinkAudit
    case socketPacket
    case memfdCreate
    case personalityQuery  // 0xffffffff
    case personalityLinux32Uname26  // 0x20008
    case personalityReadImpliesExec  // READ_IMPLIES_EXEC, 0x400000
    case personalityHighBits  // 0x1_0000_0000: the kernel reads 0 (PER_LINUX)
    case personalityAllButQueryBit  // 0xfffffff7
    case x32Getpid  // the x32 ABI's getpid

    /// The syscall number and its six arguments. Called before any filter is installed:
    /// it allocates the strings and buffers the arguments point to.
    func call() -> (Int, [Int]) {
        func pointer(_ string: String) -> Int { Int(bitPattern: strdup(string)) }
        let buffer = Int(bitPattern: malloc(64))
        let atFdcwd = -100
        return switch self {
        case .getpid: (Int(__NR_getpid), [])
        case .openatRoot: (Int(__NR_openat), [atFdcwd, pointer("/"), Int(O_RDONLY)])
        case .clone3: (Int(__NR_clone3), [0, 0])
        case .cloneNewUser: (Int(__NR_clone), [0x1000_0000 | Int(SIGCHLD), 0, 0, 0, 0])
        case .unshareNewUser: (Int(__NR_unshare), [0x1000_0000])
        case .unshareNewNet: (Int(__NR_unshare), [0x4000_0000])
        case .unshareFiles: (Int(__NR_unshare), [0x400])
        case .setns: (Int(__NR_setns), [-1, 0])
        case .tiocstiHighBits: (Int(__NR_ioctl), [-1, 1 << 32 | Int(TIOCSTI), buffer])
        case .tiocgwinsz: (Int(__NR_ioctl), [-1, Int(TIOCGWINSZ), buffer])
        case .ioUringSetup: (Int(__NR_io_uring_setup), [0, 0])
        case .mount: (Int(__NR_mount), [0, 1, 0, 0, 0])
        case .keyctl: (Int(__NR_keyctl), [9999, 0, 0, 0, 0])
        case .ptrace: (Int(__NR_ptrace), [2, 0x7FFF_FFFF, 0, 0])
        case .socketInet: (Int(__NR_socket), [Int(AF_INET), Int(SOCK_STREAM.rawValue), 0])
        case .socketInet6: (Int(__NR_socket), [Int(AF_INET6), Int(SOCK_DGRAM.rawValue), 0])
        case .socketUnix: (Int(__NR_socket), [Int(AF_UNIX), Int(SOCK_STREAM.rawValue), 0])
        case .socketNetlinkRoute: (Int(__NR_socket), [Int(AF_NETLINK), Int(SOCK_RAW.rawValue), 0])
        case .socketNetlinkAudit: (Int(__NR_socket), [Int(AF_NETLINK), Int(SOCK_RAW.rawValue), 9])
        case .socketPacket: (Int(__NR_socket), [Int(AF_PACKET), Int(SOCK_RAW.rawValue), 0])
        case .memfdCreate: (Int(__NR_memfd_create), [pointer("probe"), 0])
        case .personalityQuery: (Int(__NR_personality), [0xFFFF_FFFF])
        case .personalityLinux32Uname26: (Int(__NR_personality), [0x2_0008])
        case .personalityReadImpliesExec: (Int(__NR_personality), [0x40_0000])
        case .personalityHighBits: (Int(__NR_personality), [0x1_0000_0000])
        case .personalityAllButQueryBit: (Int(__NR_personality), [0xFFFF_FFF7])
        case .x32Getpid: (0x4000_0000 | Int(__NR_getpid), [])
        }
    }
}

/// What the probe should end in: an errno (0 for success), or death by SIGSYS.
enum Outcome: Codable, Sendable, CustomStringConvertible {
    case errno(Int32)
    case killed

    var condition: ExitTest.Condition {
        switch self {
        case .errno(let code): .exitCode(code)
        case .killed: .signal(SIGSYS)
        }
    }

    var description: String {
        switch self {
        case .errno(0): "success"
        case .errno(let code): "errno \(code)"
        case .killed: "SIGSYS"
        }
    }
}

struct Scenario: Codable, Sendable, CustomTestStringConvertible {
    var stack: FilterStack
    var probe: Probe
    var outcome: Outcome

    init(_ stack: FilterStack, _ probe: Probe, _ outcome: Outcome) {
        self.stack = stack
        self.probe = probe
        self.outcome = outcome
    }

    var testDescription: String { "\(probe) under \(stack): \(outcome)" }
}

private let ok = Outcome.errno(0)
private let eperm = Outcome.errno(EPERM)

/// glibc's syscall() is variadic, which Swift cannot call. Its code only moves registers,
/// so a fixed seven-argument prototype is sound on x86_64 and arm64 Linux.
private typealias RawSyscall = @convention(c) (Int, Int, Int, Int, Int, Int, Int) -> Int

/// Runs in an exit test's process: sets no_new_privs, installs `programs` in order, then runs
/// `body`, which must not return. Everything the filters are built from is prepared first.
private func confine(_ programs: [BPFProgram], then body: (RawSyscall) -> Never) -> Never {
    guard let symbol = dlsym(nil, "syscall") else { _exit(120) }
    let syscall = unsafeBitCast(symbol, to: RawSyscall.self)
    let fprogs = UnsafeMutableBufferPointer<sock_fprog>.allocate(capacity: programs.count)
    for (index, program) in programs.enumerated() {
        let filter = UnsafeMutableBufferPointer<sock_filter>.allocate(capacity: program.instructionCount)
        _ = program.bytes.withUnsafeBytes { filter.initialize(from: $0.bindMemory(to: sock_filter.self)) }
        fprogs[index] = sock_fprog(len: UInt16(program.instructionCount), filter: filter.baseAddress)
    }
    let prSetNoNewPrivs = 38
    guard syscall(Int(__NR_prctl), prSetNoNewPrivs, 1, 0, 0, 0, 0) == 0 else { _exit(121) }
    for index in fprogs.indices {
        let fprog = Int(bitPattern: fprogs.baseAddress! + index)
        guard syscall(Int(__NR_seccomp), Int(SECCOMP_SET_MODE_FILTER), 0, fprog, 0, 0, 0) == 0 else { _exit(122) }
    }
    body(syscall)
}

/// Makes the probe's call under `programs` and exits with its errno (0 on success). Only the
/// call itself and exit_group run under the filters.
private func probe(_ programs: [BPFProgram], _ probe: Probe) -> Never {
    let (number, args) = probe.call()
    let a = args + Array(repeating: 0, count: 6 - args.count)
    confine(programs) { syscall in
        let result = syscall(number, a[0], a[1], a[2], a[3], a[4], a[5])
        _exit(result >= 0 ? 0 : errno)
    }
}

/// Runs `script` with /bin/sh under `programs`; the exit test sees the script's status.
private func run(_ programs: [BPFProgram], script: String) -> Never {
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup("-c"), strdup(script), nil]
    // The exit test runs on a thread that blocks most signals, and execve keeps the mask:
    // Python's Pool, for one, would wait forever for workers that never see SIGTERM.
    var none = sigset_t()
    sigemptyset(&none)
    pthread_sigmask(SIG_SETMASK, &none, nil)
    confine(programs) { _ in
        execv("/bin/sh", argv)
        _exit(127)
    }
}

@Suite struct FilterBehaviourTests {
    static let scenarios: [Scenario] = [
        // Unfiltered, each probe gives something other than the filters' answers below.
        .init(.none, .getpid, ok),
        .init(.none, .clone3, .errno(EINVAL)),
        .init(.none, .unshareNewUser, .errno(EINVAL)),  // the test process has threads
        .init(.none, .setns, .errno(EBADF)),
        .init(.none, .tiocstiHighBits, .errno(EBADF)),
        .init(.none, .ioUringSetup, .errno(EFAULT)),  // needs kernel.io_uring_disabled=0, as on this host
        .init(.none, .mount, .errno(EFAULT)),
        .init(.none, .keyctl, .errno(EOPNOTSUPP)),
        .init(.none, .ptrace, .errno(ESRCH)),
        .init(.none, .socketInet, ok),
        .init(.none, .personalityReadImpliesExec, ok),

        // The hardening baseline.
        .init(.baseline, .getpid, ok),
        .init(.baseline, .openatRoot, ok),
        .init(.baseline, .socketInet, ok),
        .init(.baseline, .clone3, .errno(ENOSYS)),
        .init(.baseline, .cloneNewUser, eperm),
        .init(.baseline, .unshareNewUser, eperm),
        .init(.baseline, .unshareNewNet, eperm),
        .init(.baseline, .unshareFiles, ok),
        .init(.baseline, .setns, eperm),
        .init(.baseline, .tiocstiHighBits, eperm),
        .init(.baseline, .tiocgwinsz, .errno(EBADF)),
        .init(.baseline, .ioUringSetup, eperm),
        .init(.baseline, .mount, eperm),
        .init(.baseline, .keyctl, eperm),
        .init(.baseline, .ptrace, eperm),
        .init(.baseline, .personalityQuery, ok),
        .init(.baseline, .personalityLinux32Uname26, ok),
        .init(.baseline, .personalityReadImpliesExec, eperm),
        .init(.baseline, .personalityHighBits, eperm),
        .init(.baseline, .personalityAllButQueryBit, eperm),
        .init(.baseline, .x32Getpid, .killed),

        // The default (build) profile.
        .init(.defaultProfile, .getpid, ok),
        .init(.defaultProfile, .openatRoot, ok),
        .init(.defaultProfile, .socketInet, ok),
        .init(.defaultProfile, .socketInet6, ok),
        .init(.defaultProfile, .socketUnix, ok),
        .init(.defaultProfile, .socketNetlinkRoute, ok),
        .init(.defaultProfile, .socketNetlinkAudit, eperm),
        .init(.defaultProfile, .socketPacket, eperm),
        .init(.defaultProfile, .memfdCreate, ok),
        .init(.defaultProfile, .mount, eperm),
        .init(.defaultProfile, .keyctl, eperm),
        .init(.defaultProfile, .ptrace, eperm),
        .init(.defaultProfile, .ioUringSetup, eperm),
        .init(.defaultProfile, .unshareNewUser, eperm),
        .init(.defaultProfile, .cloneNewUser, eperm),
        .init(.defaultProfile, .clone3, .errno(ENOSYS)),
        .init(.defaultProfile, .personalityQuery, ok),
        .init(.defaultProfile, .personalityReadImpliesExec, eperm),
        .init(.baselineAndDefault, .socketInet, ok),
        .init(.baselineAndDefault, .unshareNewUser, eperm),
        .init(.baselineAndDefault, .x32Getpid, .killed),

        // The strict (detect) profile.
        .init(.strict, .getpid, ok),
        .init(.strict, .openatRoot, ok),
        .init(.strict, .socketUnix, ok),
        .init(.strict, .socketInet, eperm),
        .init(.strict, .socketInet6, eperm),
        .init(.strict, .socketNetlinkRoute, eperm),
        .init(.strict, .memfdCreate, eperm),
        .init(.strict, .tiocgwinsz, .errno(EBADF)),
        .init(.strict, .tiocstiHighBits, eperm),
        .init(.strict, .ptrace, eperm),
        .init(.strict, .clone3, .errno(ENOSYS)),
        .init(.baselineAndStrict, .socketInet, eperm),

        // Stacking: on a tie between ERRNOs the profile, installed last, answers; except that
        // every compiled profile answers clone3 with ENOSYS unless it kills.
        .init(.baselineAndOwnErrnos, .mount, .errno(EOPNOTSUPP)),
        .init(.baselineAndOwnErrnos, .clone3, .errno(ENOSYS)),
        .init(.baselineAndOwnErrnos, .unshareNewUser, eperm),
        .init(.clone3Kills, .clone3, .killed),

        // The init filter: a short allowlist, anything else kills.
        .init(.initFilter, .getpid, ok),
        .init(.initFilter, .openatRoot, .killed),
        .init(.initFilter, .socketUnix, .killed),
    ]

    @Test(arguments: scenarios)
    func filteredSyscall(_ scenario: Scenario) async {
        await #expect(processExitsWith: scenario.outcome.condition) { [scenario] in
            let programs: [BPFProgram]
            do { programs = try scenario.stack.programs() } catch { _exit(123) }
            probe(programs, scenario.probe)
        }
    }

    /// Real programs under a profile with the baseline stacked on it, as the sandbox runs them.
    struct Workload: Codable, Sendable, CustomTestStringConvertible {
        var stack: FilterStack
        var tool: String  // skipped, saying so, where this is not installed
        var script: String
        var status: Int32 = 0
        /// For a refusal: what the tool says on stderr when the filter denies it.
        var refusal: String? = nil
        var testDescription: String { "\(tool) under \(stack)" + (status == 0 ? "" : ", refused") }
    }

    static let workloads: [Workload] = [
        .init(stack: .baselineAndStrict, tool: "/bin/sh", script: """
            set -e; d=$(mktemp -d); x=$(echo abc | sed s/b/B/ | grep aBc); test "$x" = aBc
            ls -la / >/dev/null; wc -l < /etc/os-release >/dev/null; printf '[[requires]]\n' > "$d/plan.toml"
            test -s "$d/plan.toml"; id -u >/dev/null; rm -r "$d"
            """),
        .init(stack: .baselineAndStrict, tool: "/usr/bin/bash", script: """
            exec /usr/bin/bash -c 'set -e; for f in /etc/*release; do [[ -r $f ]] && read -r _ < "$f"; done; (exit 0) | cat'
            """),
        .init(stack: .baselineAndStrict, tool: "/usr/bin/python3", script: """
            exec /usr/bin/python3 -c 'import json, os, subprocess; json.dumps(os.listdir("/")); subprocess.run(["true"], check=True)'
            """),
        // Each refusal with its control: unfiltered, the same call works.
        .init(stack: .baselineAndStrict, tool: "/usr/bin/python3", script: """
            exec /usr/bin/python3 -c 'import socket; socket.socket(socket.AF_INET)'
            """, status: 1, refusal: "PermissionError: [Errno 1] Operation not permitted"),
        .init(stack: .none, tool: "/usr/bin/python3", script: """
            exec /usr/bin/python3 -c 'import socket; socket.socket(socket.AF_INET)'
            """),
        .init(stack: .baselineAndDefault, tool: "/usr/bin/unshare", script: """
            exec /usr/bin/unshare --user --map-root-user true
            """, status: 1, refusal: "unshare: unshare failed: Operation not permitted"),
        .init(stack: .none, tool: "/usr/bin/unshare", script: """
            exec /usr/bin/unshare --user --map-root-user true
            """),
        .init(stack: .baselineAndDefault, tool: "/usr/bin/python3", script: """
            exec /usr/bin/python3 -c '
            import socket, subprocess, threading, tempfile, multiprocessing
            socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()
            socket.getaddrinfo("localhost", 80)
            subprocess.run(["true"], check=True)
            t = threading.Thread(target=print, args=("",)); t.start(); t.join()
            with multiprocessing.Pool(2) as pool: assert pool.map(abs, [-1, -2]) == [1, 2]
            '
            """),
        .init(stack: .baselineAndDefault, tool: "/usr/bin/gcc", script: """
            set -e; d=$(mktemp -d); printf '#include <pthread.h>\nstatic void *f(void *a) { return a; }\nint main(void) { pthread_t t; pthread_create(&t, 0, f, 0); return pthread_join(t, 0); }\n' > "$d/a.c"
            gcc -O1 -pthread -o "$d/a" "$d/a.c"; "$d/a"; rm -r "$d"
            """),
        .init(stack: .baselineAndDefault, tool: "/usr/bin/git", script: """
            set -e; d=$(mktemp -d); cd "$d"; git init -q; echo x > f; git add f
            git -c user.email=a@b -c user.name=a commit -qm x; git log --oneline | grep -q x; rm -rf "$d"
            """),
        .init(stack: .baselineAndDefault, tool: "/usr/bin/node", script: """
            exec /usr/bin/node -e '
            const fs = require("fs"), cp = require("child_process"), { Worker } = require("worker_threads");
            fs.readdirSync("/"); cp.execFileSync("true");
            fs.readFile("/etc/hostname", (err) => { if (err) process.exit(3); });
            new Worker("1", { eval: true }).on("exit", (code) => process.exit(code));
            '
            """),
        .init(stack: .baselineAndDefault, tool: "/opt/swift/usr/bin/swiftc", script: """
            set -e; d=$(mktemp -d); echo 'print("hi")' > "$d/m.swift"
            /opt/swift/usr/bin/swiftc -o "$d/m" "$d/m.swift"; "$d/m" | grep -q hi; rm -r "$d"
            """),
    ]

    @Test(arguments: workloads)
    func workload(_ workload: Workload) async throws {
        guard access(workload.tool, X_OK) == 0 else {
            // A warning shows the skip in the output, where a cancellation alone shows as a pass.
            Issue.record("skipped: \(workload.tool) is not installed here", severity: .warning)
            try Test.cancel("skipped: \(workload.tool) is not installed here")
        }
        let result = await #expect(processExitsWith: .exitCode(workload.status), observing: [\.standardErrorContent]) { [workload] in
            let programs: [BPFProgram]
            do { programs = try workload.stack.programs() } catch { _exit(123) }
            run(programs, script: workload.script)
        }
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        if let refusal = workload.refusal {
            #expect(stderr.contains(refusal), "\(stderr)")
        } else {
            #expect(!stderr.contains("Operation not permitted"), "\(stderr)")
        }
    }
}

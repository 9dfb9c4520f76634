import Foundation
import Testing
@testable import Seccomp
import JSON

private func compile(_ json: String, on host: SeccompCompiler.Host = .current) throws -> CompiledProfile {
    try SeccompCompiler.compile(SeccompProfile.parse(Array(json.utf8), origin: "test.json"), on: host)
}

private let amd64 = SeccompCompiler.Host(dockerArchitecture: "amd64", architecture: .x86_64,
                                         kernel: KernelVersion(major: 6, minor: 1))

@Suite struct SeccompCompilerTests {
    @Test(arguments: ["default", "strict"])
    func builtinProfilesCompileCleanly(name: String) throws {
        let profile = try #require(SeccompProfile.builtin(name))
        let compiled = try SeccompCompiler.compile(profile)
        #expect(compiled.warnings == [])
        #expect(compiled.filterFlags == 0)
        #expect(!compiled.notifies)
        // The kernel refuses programs over BPF_MAXINSNS (4096) instructions.
        #expect(compiled.program.instructionCount > 50 && compiled.program.instructionCount < 4096)
        #expect(compiled.program.bytes.count == compiled.program.instructionCount * 8)
    }

    @Test func builtinNames() {
        #expect(SeccompProfile.builtinNames == ["default", "strict"])
        #expect(SeccompProfile.builtin("unconfined") == nil)
    }

    @Test func unknownSyscallsWarnInsteadOfFailing() throws {
        let compiled = try compile("""
        {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
          {"names": ["read", "not_a_syscall"], "action": "SCMP_ACT_ALLOW"},
          {"name": "socketcall", "action": "SCMP_ACT_ALLOW"},
          {"names": ["write", "also_unknown"], "action": "SCMP_ACT_ALLOW"}
        ]}
        """)
        // socketcall exists on other architectures only: skipped without a word.
        #expect(compiled.warnings == [
            #"unknown syscall "not_a_syscall" in $.syscalls[0].names[1]: skipped"#,
            #"unknown syscall "also_unknown" in $.syscalls[2].names[1]: skipped"#,
        ])
    }

    @Test(arguments: [
        // (default action, clone3's action in the profile, compiled as clone3 → ENOSYS)
        ("SCMP_ACT_ALLOW", nil, true),
        ("SCMP_ACT_ERRNO", nil, true),
        ("SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", true),
        ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", true),
        ("SCMP_ACT_ALLOW", "SCMP_ACT_KILL_PROCESS", false),
        ("SCMP_ACT_TRAP", nil, false),
    ] as [(String, String?, Bool)])
    func clone3AnswersENOSYS(defaultAction: String, clone3: String?, becomesENOSYS: Bool) throws {
        func profile(_ entry: String?) -> String {
            #"{"defaultAction": "\#(defaultAction)", "syscalls": [\#(entry ?? "")]}"#
        }
        let given = try compile(profile(clone3.map { #"{"names": ["clone3"], "action": "\#($0)"}"# }))
        let stated = try compile(profile(#"{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}"#))
        #expect((given.program == stated.program) == becomesENOSYS)
    }

    @Test func syscallsNewerThanLibseccompResolveByNumber() {
        #expect(SyscallNumber(name: "read") == .number(0))
        #expect(SyscallNumber(name: "open_tree_attr") == .number(467))
        #expect(SyscallNumber(name: "socketcall") == .notOnThisArchitecture)
        #expect(SyscallNumber(name: "not_a_syscall") == .unknown)
    }

    @Test(arguments: [
        // (includes, excludes, applies on amd64 with kernel 6.1)
        (#"{}"#, #"{}"#, true),
        (#"{"arches": ["amd64", "x32"]}"#, #"{}"#, true),
        (#"{"arches": ["arm64"]}"#, #"{}"#, false),
        (#"{}"#, #"{"arches": ["amd64"]}"#, false),
        (#"{}"#, #"{"arches": ["s390", "s390x"]}"#, true),
        (#"{"caps": ["CAP_SYS_ADMIN"]}"#, #"{}"#, false),
        (#"{}"#, #"{"caps": ["CAP_SYS_ADMIN"]}"#, true),
        (#"{"minKernel": "6.1"}"#, #"{}"#, true),
        (#"{"minKernel": "6.2"}"#, #"{}"#, false),
        (#"{}"#, #"{"minKernel": "6.1"}"#, false),
        (#"{}"#, #"{"minKernel": "6.2"}"#, true),
    ])
    func includesAndExcludes(includes: String, excludes: String, applies: Bool) throws {
        let rule = #"{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "includes": \#(includes), "excludes": \#(excludes)}"#
        let withRule = try compile(#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [\#(rule)]}"#, on: amd64)
        let without = try compile(#"{"defaultAction": "SCMP_ACT_ALLOW"}"#, on: amd64)
        #expect((withRule.program != without.program) == applies)
    }

    @Test func repeatedArgumentIndexMeansAnyOf() throws {
        // runc's reading: separate rules, so this equals two entries with one check each.
        let repeated = try compile("""
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO",
          "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 10, "op": "SCMP_CMP_EQ"}]}]}
        """)
        let separate = try compile("""
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
          {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
          {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 10, "op": "SCMP_CMP_EQ"}]}]}
        """)
        #expect(repeated.program == separate.program)
    }

    @Test func rulesRepeatingTheDefaultActionAreDropped() throws {
        // libseccomp itself rejects such rules with EACCES.
        let compiled = try compile("""
        {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
          {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
          {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
        """)
        let plain = try compile(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#)
        #expect(compiled.program == plain.program)
    }

    @Test func flagsListenerAndArchitectures() throws {
        let compiled = try compile("""
        {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PPC64LE"], "listenerPath": "/run/a.sock",
         "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
         "syscalls": [{"names": ["connect"], "action": "SCMP_ACT_NOTIFY"}]}
        """, on: amd64)
        #expect(compiled.filterFlags == 0b110)
        #expect(compiled.notifies)
        #expect(compiled.warnings == [
            "architectures does not list the native SCMP_ARCH_X86_64: compiling for it anyway",
            "listenerPath is not supported (stockade runs no seccomp agent): ignored",
            "flag SECCOMP_FILTER_FLAG_TSYNC ignored: the sandbox installs filters before any thread exists",
        ])
        let archMap = try compile("""
        {"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}]}
        """, on: amd64)
        #expect(archMap.warnings == [])
    }

    @Test func failuresAreTypedErrors() async {
        // With no descriptor left, the memfd for the export cannot be made.
        await #expect(processExitsWith: .success) {
            var limit = rlimit(rlim_cur: 0, rlim_max: 0)
            guard setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { exit(2) }
            do throws(SeccompCompileError) {
                _ = try SeccompCompiler.compile(SeccompProfile(defaultAction: .allow))
            } catch {
                let expected = "memfd_create failed for the profile: Too many open files (errno 24)"
                exit(error.operation == "memfd_create" && error.errno == EMFILE && error.description == expected ? 0 : 1)
            }
            exit(3)
        }
    }

    @Test func fixedFiltersCompile() throws {
        let baseline = try SeccompCompiler.hardeningBaseline
        let initFilter = try SeccompCompiler.initFilter
        #expect(baseline.instructionCount > 50 && baseline.instructionCount < 4096)
        #expect(initFilter.instructionCount > 16 && initFilter.instructionCount < 100)
        // Compiled once: the same bytes every time.
        #expect(try SeccompCompiler.hardeningBaseline == baseline)
    }

    @Test func baselineNamesAreAllKnownHere() {
        for rule in SeccompCompiler.baselineRules {
            #expect(SyscallNumber(name: rule.syscall) != .unknown, "\(rule.syscall)")
        }
    }

    @Test func resolveAndLoad() throws {
        #expect(try SeccompProfile.resolve("strict") == SeccompProfile.builtin("strict"))
        #expect(throws: SeccompProfileError.self) { try SeccompProfile.resolve("nonesuch") }
        do {
            _ = try SeccompProfile.resolve("nonesuch")
        } catch {
            #expect(error.description == "nonesuch: no built-in profile of that name (built-in: default, strict; write ./nonesuch for a file)")
        }
        do {
            _ = try SeccompProfile.resolve("/nonexistent/profile.json")
        } catch {
            #expect(error.description == "/nonexistent/profile.json: cannot open: No such file or directory")
        }
        let path = Repository.root + "/profiles/default.json"
        #expect(try SeccompProfile.resolve(path) == SeccompProfile.builtin("default"))
    }

    @Test func loadRefusesLargeFiles() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("stockade-large-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(repeating: 0x20, count: (1 << 20) + 1).write(to: URL(fileURLWithPath: path))
        do {
            _ = try SeccompProfile.load(path: path)
            Issue.record("loaded a file over 1 MiB")
        } catch {
            #expect(error.location == .file)
            #expect(error.reason.contains("larger than 1048576 bytes"))
        }
    }

    /// `scripts/embed-profiles.sh` must have been run after the last change to `profiles/`.
    @Test func embeddedProfilesMatchTheFiles() throws {
        let directory = Repository.root + "/profiles"
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasSuffix(".json") && !$0.hasSuffix(".schema.json") }.sorted()
        #expect(files.map { String($0.dropLast(5)) } == BuiltinProfiles.sources.map(\.name),
                "run scripts/embed-profiles.sh")
        for (name, json) in BuiltinProfiles.sources {
            let onDisk = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name).json"))
            #expect(Array(onDisk) == Array(json.utf8), "profiles/\(name).json changed: run scripts/embed-profiles.sh")
        }
    }
}

enum Repository {
    /// The package root, found from this file's path: Tests/SeccompTests/<file>.
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
}

import Testing
@testable import Seccomp
import JSON

private func parse(_ text: String) throws(SeccompProfileError) -> SeccompProfile {
    try SeccompProfile.parse(Array(text.utf8), origin: "test.json")
}

private func parseError(_ text: String) -> SeccompProfileError? {
    do {
        _ = try parse(text)
        return nil
    } catch {
        return error
    }
}

@Suite struct SeccompProfileTests {
    @Test func dockerStyleProfile() throws {
        let profile = try parse("""
        {
          "defaultAction": "SCMP_ACT_ERRNO",
          "defaultErrnoRet": 1,
          "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
          "flags": ["SECCOMP_FILTER_FLAG_LOG"],
          "listenerPath": "/run/agent.sock",
          "listenerMetadata": "meta",
          "someFutureKey": {"ignored": true},
          "x-stockade": {"comment": "hello"},
          "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": [], "comment": "", "includes": {}, "excludes": {}},
            {"name": "personality", "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
             "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
            {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_BPF"], "minKernel": "5.8"}},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["x"], "action": "SCMP_ACT_TRACE", "errnoRet": 7, "args": null, "comment": null}
          ]
        }
        """)
        #expect(profile.defaultAction == .errno)
        #expect(profile.defaultErrnoRet == 1)
        #expect(profile.archMap == [.init(architecture: .x86_64, subArchitectures: [.x86, .x32])])
        #expect(profile.flags == [.log])
        #expect(profile.listenerPath == "/run/agent.sock")
        #expect(profile.listenerMetadata == "meta")
        #expect(profile.stockadeExtension == .object(JSONObject([.init(key: "comment", value: .string("hello"))])))
        #expect(profile.syscalls.count == 6)
        #expect(profile.syscalls[0].names == ["read", "write"])
        #expect(profile.syscalls[1] == SeccompSyscall(
            names: ["personality"], action: .allow, args: [.init(index: 0, value: 0xFFFF_FFFF, op: .equal)]))
        #expect(profile.syscalls[2].args == [.init(index: 0, value: 0x7E02_0000, valueTwo: 0, op: .maskedEqual)])
        #expect(profile.syscalls[2].excludes == .init(arches: ["s390", "s390x"], caps: ["CAP_SYS_ADMIN"]))
        #expect(profile.syscalls[3].includes == .init(caps: ["CAP_BPF"], minKernel: KernelVersion(major: 5, minor: 8)))
        #expect(profile.syscalls[4].errnoRet == 38)
        #expect(profile.syscalls[5].action == .trace)
        #expect(profile.syscalls[5].args.isEmpty)
    }

    @Test func minimalProfile() throws {
        #expect(try parse(#"{"defaultAction": "SCMP_ACT_ALLOW"}"#) == SeccompProfile(defaultAction: .allow))
    }

    @Test func largestArgumentValue() throws {
        let profile = try parse("""
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_ERRNO",
          "args": [{"index": 5, "value": 18446744073709551615, "valueTwo": 18446744073709551615, "op": "SCMP_CMP_MASKED_EQ"}]}]}
        """)
        #expect(profile.syscalls[0].args[0].value == UInt64.max)
        #expect(profile.syscalls[0].args[0].valueTwo == UInt64.max)
    }

    /// A profile whose default allows, with these members added.
    private static func allow(_ members: String) -> String { #"{"defaultAction": "SCMP_ACT_ALLOW", \#(members)}"# }

    /// A profile with one entry, for syscall "a" unless the entry names its own.
    private static func entry(_ members: String) -> String {
        allow(#""syscalls": [{"names": ["a"], \#(members)}]"#)
    }

    /// A profile with one entry for "a" with one argument check.
    private static func arg(_ members: String) -> String {
        entry(#""action": "SCMP_ACT_ERRNO", "args": [{\#(members)}]"#)
    }

    /// Each malformed profile, the JSON path its error names, and part of the reason.
    static let malformed: [(json: String, path: String, reason: String)] = [
        (#"[]"#, "$", "expected an object, found an array"),
        (#"{}"#, "$", "missing \"defaultAction\""),
        (#"{"defaultAction": null}"#, "$", "missing \"defaultAction\""),
        (#"{"defaultAction": "SCMP_ACT_FOO"}"#, "$.defaultAction",
         "unknown action \"SCMP_ACT_FOO\" (expected one of SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS"),
        (#"{"defaultAction": 1}"#, "$.defaultAction", "expected a string, found the number 1"),
        (allow(#""defaultErrnoRet": 1"#), "$.defaultErrnoRet", "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno"),
        (#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 4096}"#, "$.defaultErrnoRet",
         "4096 is not an integer from 0 to 4095"),
        (#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1}"#, "$.defaultErrnoRet",
         "-1 is not an integer from 0 to 4095"),
        (allow(#""architectures": ["SCMP_ARCH_VAX"]"#), "$.architectures[0]", "unknown architecture \"SCMP_ARCH_VAX\""),
        (allow(#""architectures": "SCMP_ARCH_X86_64""#), "$.architectures", "expected an array"),
        (allow(#""architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]"#),
         "$.archMap", "both \"architectures\" and \"archMap\""),
        (allow(#""archMap": [{"subArchitectures": []}]"#), "$.archMap[0]", "missing \"architecture\""),
        (allow(#""archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["x"]}]"#),
         "$.archMap[0].subArchitectures[0]", "unknown architecture \"x\""),
        (allow(#""flags": ["SECCOMP_FILTER_FLAG_NOPE"]"#), "$.flags[0]", "unknown flag"),
        (allow(#""listenerPath": 3"#), "$.listenerPath", "expected a string"),
        (allow(#""syscalls": {}"#), "$.syscalls", "expected an array, found an object"),
        (allow(#""syscalls": [{"action": "SCMP_ACT_ERRNO"}]"#), "$.syscalls[0]", "missing \"names\""),
        (allow(#""syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]"#), "$.syscalls[0].names",
         "at least one syscall"),
        (allow(#""syscalls": [{"names": ["a", 1], "action": "SCMP_ACT_ERRNO"}]"#), "$.syscalls[0].names[1]",
         "expected a string"),
        (allow(#""syscalls": [{"names": ["a b"], "action": "SCMP_ACT_ERRNO"}]"#), "$.syscalls[0].names[0]",
         "\"a b\" is not a syscall name"),
        (entry(#""name": "b", "action": "SCMP_ACT_ERRNO""#), "$.syscalls[0]", "both \"names\" and \"name\""),
        (allow(#""syscalls": [{"names": ["a"]}]"#), "$.syscalls[0]", "missing \"action\""),
        (entry(#""action": "SCMP_ACT_FOO""#), "$.syscalls[0].action", "unknown action \"SCMP_ACT_FOO\""),
        (entry(#""action": "SCMP_ACT_KILL", "errnoRet": 1"#), "$.syscalls[0].errnoRet",
         "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno, not SCMP_ACT_KILL"),
        (entry(#""action": "SCMP_ACT_ERRNO", "arg": []"#), "$.syscalls[0]", "unknown key \"arg\""),
        (arg(#""index": 6, "op": "SCMP_CMP_EQ""#), "$.syscalls[0].args[0].index", "6 is not an integer from 0 to 5"),
        (arg(#""index": 0"#), "$.syscalls[0].args[0]", "missing \"op\""),
        (arg(#""op": "SCMP_CMP_EQ""#), "$.syscalls[0].args[0]", "missing \"index\""),
        (arg(#""index": 0, "op": "SCMP_CMP_LIKE""#), "$.syscalls[0].args[0].op",
         "unknown operator \"SCMP_CMP_LIKE\" (expected one of SCMP_CMP_NE, SCMP_CMP_LT"),
        (arg(#""index": 0, "op": "SCMP_CMP_EQ", "value": 18446744073709551616"#), "$.syscalls[0].args[0].value",
         "18446744073709551616 is not an integer from 0 to 18446744073709551615"),
        (arg(#""index": 0, "op": "SCMP_CMP_EQ", "value": -1"#), "$.syscalls[0].args[0].value", "-1 is not an integer"),
        (arg(#""index": 0, "op": "SCMP_CMP_EQ", "valueTwo": 1.5"#), "$.syscalls[0].args[0].valueTwo",
         "1.5 is not an integer"),
        (arg(#""index": 0, "op": "SCMP_CMP_EQ", "value": "1""#), "$.syscalls[0].args[0].value",
         "found the string \"1\""),
        (arg(#""index": 0, "op": "SCMP_CMP_MASKED_EQ", "value": 0, "valueTwo": 8"#), "$.syscalls[0].args[0]",
         "SCMP_CMP_MASKED_EQ never matches"),
        (entry(#""action": "SCMP_ACT_ERRNO", "includes": {"arches": ["vax"]}"#), "$.syscalls[0].includes.arches[0]",
         "unknown architecture \"vax\" (expected one of x86, amd64"),
        (entry(#""action": "SCMP_ACT_ERRNO", "excludes": {"minKernel": "5"}"#), "$.syscalls[0].excludes.minKernel",
         "\"5\" is not a kernel version"),
        (entry(#""action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "5.8.1"}"#),
         "$.syscalls[0].includes.minKernel", "\"5.8.1\" is not a kernel version"),
        (entry(#""action": "SCMP_ACT_ERRNO", "includes": {"kernel": "5.8"}"#), "$.syscalls[0].includes",
         "unknown key \"kernel\" (expected one of arches, caps, minKernel)"),
        (allow(#""x-stockade": {"comment": 1}"#), #"$["x-stockade"].comment"#, "expected a string"),
        (allow(#""x-stockade": {"audit": true}"#), #"$["x-stockade"].audit"#, "expected an array"),
        (allow(#""x-stockade": {"observe": []}"#), #"$["x-stockade"]"#, "unknown key \"observe\""),
        (allow(#""x-stockade": []"#), #"$["x-stockade"]"#, "expected an object"),
        // Contradictions: the same syscall, the same conditions, different actions.
        (#"""
         {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
          {"names": ["write"], "action": "SCMP_ACT_KILL"}]}
         """#, "$.syscalls[1].names[0]", "\"write\" contradicts $.syscalls[0], which gives it SCMP_ACT_ALLOW"),
        (allow(#"""
         "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO"}, {"names": ["a"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
         """#), "$.syscalls[1].names[0]", "SCMP_ACT_ERRNO (errno 1)"),
        (#"""
         {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ALLOW",
          "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}, {"names": ["socket"], "action": "SCMP_ACT_LOG"}]}
         """#, "$.syscalls[1].names[0]", "contradicts $.syscalls[0]"),
        (#"""
         {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
          {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
          {"names": ["socket"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}]}
         """#, "$.syscalls[1].names[0]", "contradicts $.syscalls[0]"),
    ]

    @Test(arguments: malformed)
    func malformedProfiles(json: String, path: String, reason: String) {
        let error = parseError(json)
        #expect(error?.location == .value(path: path), "\(String(describing: error))")
        #expect(error?.reason.contains(reason) == true, "\(String(describing: error))")
    }

    @Test func consistentDuplicatesAreAccepted() throws {
        // Repeating a syscall with the same effect, or under different conditions, is fine.
        _ = try parse("""
        {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
          {"names": ["read", "read"], "action": "SCMP_ACT_ALLOW"},
          {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
          {"names": ["kill"], "action": "SCMP_ACT_KILL"},
          {"names": ["kill"], "action": "SCMP_ACT_KILL_THREAD"},
          {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
          {"names": ["socket"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
          {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
          {"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]}
        """)
    }

    @Test func descriptionIsOneActionableLine() {
        let error = parseError(#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_FOO"}]}"#)
        let description = error.map(String.init(describing:)) ?? ""
        #expect(description.hasPrefix(#"test.json: $.syscalls[0].action: unknown action "SCMP_ACT_FOO" (expected one of SCMP_ACT_KILL, "#))
        #expect(!description.contains("\n"))
    }

    @Test func syntaxErrorsCarryLineAndColumn() {
        let error = parseError("{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n}")
        #expect(error?.location == .text(line: 3, column: 1))
        #expect(error.map(String.init(describing:))?.hasPrefix("test.json:3:1: unexpected '}'") == true)
    }

    @Test func longValuesAreClippedInMessages() {
        let name = String(repeating: "x", count: 500) + " y"
        let error = parseError(#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [""# + name + #""], "action": "SCMP_ACT_ERRNO"}]}"#)
        #expect(error.map(String.init(describing:))?.count ?? 0 < 200)
    }

    @Test func kernelVersions() {
        #expect(KernelVersion(release: "6.18.44-fc-v657") == KernelVersion(major: 6, minor: 18))
        #expect(KernelVersion(release: "5.8") == KernelVersion(major: 5, minor: 8))
        #expect(KernelVersion(release: "6.1-rc1") == KernelVersion(major: 6, minor: 1))
        #expect(KernelVersion(release: "6") == nil)
        #expect(KernelVersion(major: 5, minor: 10) > KernelVersion(major: 5, minor: 8))
    }
}

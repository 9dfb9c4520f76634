import CSeccomp
import Testing
@testable import Seccomp
import JSON

private func parse(_ text: String) throws(SeccompProfileError) -> SeccompProfile {
    try SeccompProfile.parse(Array(text.utf8), origin: "test.json")
}

private func audit(_ entries: String) -> String {
    #"{"defaultAction": "SCMP_ACT_ALLOW", "x-stockade": {"comment": "c", "audit": \#(entries)}}"#
}

@Suite struct AuditProfileTests {
    // MARK: x-stockade.audit

    @Test func auditRulesAreRead() throws {
        let profile = try parse(audit("""
            [{"names": ["execve", "execveat"], "comment": "Running programs."},
             {"names": ["openat"], "args": [{"index": 2, "value": 3, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"},
                                            {"index": 2, "value": 3, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]},
             {"names": ["socket"], "args": null, "comment": null}]
            """))
        #expect(profile.auditRules == [
            AuditRule(names: ["execve", "execveat"], comment: "Running programs."),
            AuditRule(names: ["openat"], args: [.init(index: 2, value: 3, valueTwo: 1, op: .maskedEqual),
                                                .init(index: 2, value: 3, valueTwo: 2, op: .maskedEqual)]),
            AuditRule(names: ["socket"]),
        ])
        #expect(try parse(#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).auditRules == [])
        #expect(try parse(audit("null")).auditRules == [])
    }

    @Test func builtinProfilesObserveANarrowSet() throws {
        let defaultRules = try #require(SeccompProfile.builtin("default")).auditRules
        #expect(defaultRules.flatMap(\.names) == [
            "execve", "execveat", "connect", "bind", "sendto", "socket", "openat", "open", "creat", "openat2",
        ])
        #expect(defaultRules.first { $0.names == ["sendto"] }?.args == [.init(index: 4, value: 0, op: .notEqual)])
        #expect(defaultRules.first { $0.names == ["socket"] }?.args == [.init(index: 0, value: 1, op: .notEqual)])
        let strictRules = try #require(SeccompProfile.builtin("strict")).auditRules
        #expect(strictRules.flatMap(\.names) == ["execve", "execveat", "socket"])
    }

    static let malformed: [(String, String, String)] = [
        (audit("{}"), #"$["x-stockade"].audit"#, "expected an array, found an object"),
        (audit("[1]"), #"$["x-stockade"].audit[0]"#, "expected an object"),
        (audit(#"[{"args": []}]"#), #"$["x-stockade"].audit[0]"#, "missing \"names\""),
        (audit(#"[{"names": []}]"#), #"$["x-stockade"].audit[0].names"#, "must name at least one syscall"),
        (audit(#"[{"names": ["a b"]}]"#), #"$["x-stockade"].audit[0].names[0]"#, "is not a syscall name"),
        (audit(#"[{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]"#), #"$["x-stockade"].audit[0]"#,
         "unknown key \"action\" (expected one of names, args, comment)"),
        (audit(#"[{"names": ["read"], "comment": 5}]"#), #"$["x-stockade"].audit[0].comment"#, "expected a string"),
        (audit(#"[{"names": ["read"]}, {"names": ["a"]}, {"names": ["b"], "args": [{"index": 0, "op": "SCMP_CMP_IS"}]}]"#),
         #"$["x-stockade"].audit[2].args[0].op"#, "unknown operator \"SCMP_CMP_IS\""),
        (audit(#"[{"names": ["b"], "args": [{"index": 7, "op": "SCMP_CMP_EQ"}]}]"#),
         #"$["x-stockade"].audit[0].args[0].index"#, "7 is not an integer from 0 to 5"),
        (audit(#"[{"names": ["b"], "args": [{"index": 0, "value": 1, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]}]"#),
         #"$["x-stockade"].audit[0].args[0]"#, "SCMP_CMP_MASKED_EQ never matches"),
        (audit(#"[{"names": ["b"], "args": [{"index": 0, "op": "SCMP_CMP_EQ", "valu": 1}]}]"#),
         #"$["x-stockade"].audit[0].args[0]"#, "unknown key \"valu\""),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "x-stockade": {"audits": []}}"#, #"$["x-stockade"]"#,
         "unknown key \"audits\" (expected one of comment, audit)"),
    ]

    @Test(arguments: malformed)
    func malformedAuditRules(json: String, path: String, reason: String) {
        var caught: SeccompProfileError?
        do { _ = try parse(json) } catch { caught = error }
        #expect(caught?.location == .value(path: path), "\(String(describing: caught))")
        #expect(caught?.reason.contains(reason) == true, "\(String(describing: caught))")
    }

    // MARK: The event schema

    @Test func eventSchemaIsStrictJSONAndCoversTheObservedCalls() throws {
        let path = Repository.root + "/profiles/audit-event.schema.json"
        let schema = try JSONParser.parse(try ProfileSource.file(path).bytes)
        guard case .object(let root) = schema, case .object(let definitions)? = root["$defs"],
              case .object(let event)? = definitions["event"], case .object(let properties)? = event["properties"],
              case .array(let conditions)? = event["allOf"],
              case .object(let dropped)? = definitions["dropped"], case .object(let droppedFields)? = dropped["properties"] else {
            Issue.record("not an event and a dropped record under $defs, with properties and allOf")
            return
        }
        #expect(root["$schema"] == .string("https://json-schema.org/draft/2020-12/schema"))
        #expect(droppedFields.members.map(\.key) == [
            "type", "time", "dropped", "droppedBySize", "droppedByRate", "maxBytes", "maxEventsPerSecond",
        ])
        #expect(properties.members.map(\.key) == [
            "time", "sandbox", "phase", "buildpack", "pid", "syscall", "args", "outcome", "errno", "errnoName",
        ])
        // Every syscall the built-in profiles observe has its arguments decoded, but openat2
        // (its flags and path are in a struct the supervisor does not decode).
        var decoded: Set<String> = []
        for case .object(let condition) in conditions {
            guard case .object(let test)? = condition["if"], case .object(let fields)? = test["properties"],
                  case .object(let syscall)? = fields["syscall"] else { continue }
            if case .array(let names)? = syscall["enum"] {
                for case .string(let name) in names { decoded.insert(name) }
            } else if case .string(let name)? = syscall["const"] {
                decoded.insert(name)
            }
        }
        let observed = ["default", "strict"].flatMap { SeccompProfile.builtin($0)!.auditRules.flatMap(\.names) }
        #expect(Set(observed).subtracting(decoded) == ["openat2"])
    }

    // MARK: Syscall names

    @Test func syscallNamesBothWays() {
        #expect(SeccompCompiler.syscallName(0) == "read")
        #expect(SeccompCompiler.syscallName(Int32(__NR_openat)) == "openat")
        #expect(SeccompCompiler.syscallName(Int32(__NR_clone3)) == "clone3")
        #expect(SeccompCompiler.syscallName(467) == "open_tree_attr")  // newer than libseccomp 2.5.4
        #expect(SeccompCompiler.syscallName(469) == "file_setattr")
        #expect(SeccompCompiler.syscallName(-1) == nil)
        #expect(SeccompCompiler.syscallName(5000) == nil)
        #expect(SeccompCompiler.syscallName(0x4000_0000 | 39) == nil)
        #expect(SeccompCompiler.syscallNumber("read") == 0)
        #expect(SeccompCompiler.syscallNumber("lsm_set_self_attr") == 460)
        #expect(SeccompCompiler.syscallNumber("socketcall") == nil)
        #expect(SeccompCompiler.syscallNumber("not_a_syscall") == nil)
        for (number, name) in SeccompCompiler.nativeSyscalls {
            #expect(SeccompCompiler.syscallNumber(name) == number, "\(name)")
        }
        #expect(SeccompCompiler.nativeSyscalls.count > 350)
    }

    // MARK: Learned profiles

    @Test func learnedProfileIsDeterministicAndParsesBack() throws {
        let seen: Set<String> = ["write", "read", "exit_group", "clone3", "openat", "mmap", "bad name", ""]
        let bytes = SeccompProfile.learned(syscalls: seen, comment: "Learned from \"make\"\n(test).")
        #expect(bytes == SeccompProfile.learned(syscalls: seen, comment: "Learned from \"make\"\n(test)."))
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text == #"""
            {
              "architectures": ["SCMP_ARCH_X86_64"],
              "defaultAction": "SCMP_ACT_ERRNO",
              "defaultErrnoRet": 1,
              "syscalls": [
                {
                  "action": "SCMP_ACT_ALLOW",
                  "comment": "The syscalls seen while learning.",
                  "names": ["exit_group", "mmap", "openat", "read", "write"]
                },
                {
                  "action": "SCMP_ACT_ERRNO",
                  "comment": "clone3 passes its flags in memory, where a filter cannot look: ENOSYS makes libc fall back to clone.",
                  "errnoRet": 38,
                  "names": ["clone3"]
                }
              ],
              "x-stockade": {
                "comment": "Learned from \"make\"\n(test)."
              }
            }

            """#)
        let profile = try SeccompProfile.parse(bytes, origin: "learned.json")
        #expect(profile.defaultAction == .errno && profile.defaultErrnoRet == 1)
        #expect(profile.architectures == [.x86_64])
        #expect(profile.syscalls.map(\.names) == [["exit_group", "mmap", "openat", "read", "write"], ["clone3"]])
        #expect(profile.syscalls[1].errnoRet == 38)
        let compiled = try SeccompCompiler.compile(profile)
        #expect(compiled.warnings == [])
    }

    @Test func learnedProfileWrapsLongListsAndKeepsAuditRules() throws {
        let all = Set(SeccompCompiler.nativeSyscalls.map(\.name))
        let rules = try #require(SeccompProfile.builtin("default")).auditRules
        let bytes = SeccompProfile.learned(syscalls: all, comment: "everything", auditRules: rules)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.split(separator: "\n").allSatisfy { $0.count <= 100 || $0.contains("\"comment\"") })
        #expect(text.split(separator: "\n").count > 40)
        let profile = try SeccompProfile.parse(bytes, origin: "learned.json")
        #expect(profile.auditRules == rules.map { AuditRule(names: $0.names, args: $0.args, comment: $0.comment) })
        #expect(Set(profile.syscalls[0].names) == all.subtracting(["clone3"]))
        #expect(try SeccompCompiler.compile(profile).warnings == [])
        #expect(try SeccompCompiler.compileAudit(profile).warnings == [])
    }

    @Test func emptyLearnedProfileParses() throws {
        let profile = try SeccompProfile.parse(SeccompProfile.learned(syscalls: [], comment: ""), origin: "x")
        #expect(profile.syscalls.map(\.names) == [["clone3"]])
    }

    // MARK: check(against:)

    @Test func checkAgainstTheDefault() throws {
        let base = try #require(SeccompProfile.builtin("default"))
        #expect(base.check(against: base) == [])
        #expect(try #require(SeccompProfile.builtin("strict")).check(against: base) == [])
        // A learned profile allows each syscall outright: socket and personality are wider
        // than the default's, mount and ptrace are refused by it, clone3 never counts.
        let learned = try SeccompProfile.parse(SeccompProfile.learned(
            syscalls: ["read", "write", "socket", "personality", "mount", "ptrace", "clone3", "ioctl", "clone"],
            comment: "x"), origin: "learned.json")
        #expect(learned.check(against: base) == ["clone", "mount", "personality", "ptrace", "socket"])
        // The default refuses much that strict allows nothing of.
        #expect(!base.check(against: try #require(SeccompProfile.builtin("strict"))).isEmpty)
    }

    @Test(arguments: [
        // (profile's rules for socket, reported against the default)
        (#"{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}"#, false),
        (#"{"names": ["socket"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]}"#, false),
        (#"{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}]}"#, true),
        (#"{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 0, "op": "SCMP_CMP_EQ"}]}"#, false),
        (#"{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 17, "op": "SCMP_CMP_EQ"}]}"#, true),
        (#"{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_LT"}]}"#, true),
        (#"{"names": ["socket"], "action": "SCMP_ACT_NOTIFY"}"#, false),
        (#"{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}}"#, false),
    ])
    func checkComparesConditions(rule: String, reported: Bool) throws {
        let base = try #require(SeccompProfile.builtin("default"))
        let profile = try parse(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [\#(rule)]}"#)
        #expect(profile.check(against: base) == (reported ? ["socket"] : []))
    }

    @Test func checkWithAllowingDefaults() throws {
        let base = try #require(SeccompProfile.builtin("default"))
        // Allows everything but a few: reports what the default refuses.
        let denylist = try parse("""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
              {"names": ["mount", "ptrace"], "action": "SCMP_ACT_ERRNO"}]}
            """)
        let reported = denylist.check(against: base)
        #expect(reported.contains("keyctl") && reported.contains("socket") && reported.contains("unshare"))
        #expect(!reported.contains("mount") && !reported.contains("read") && !reported.contains("clone3"))
        // Against a base that refuses socket only for AF_PACKET.
        let packetless = try parse("""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO",
              "args": [{"index": 0, "value": 17, "op": "SCMP_CMP_EQ"}]}]}
            """)
        #expect(try parse(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}]}"#)
            .check(against: packetless) == [])
        #expect(try parse(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ALLOW"}]}"#)
            .check(against: packetless) == ["socket"])
        #expect(packetless.check(against: packetless) == [])
        #expect(denylist.check(against: packetless) == ["socket"])
    }
}

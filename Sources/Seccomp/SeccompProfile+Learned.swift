import JSON
extension SeccompProfile {
    /// A profile allowing exactly `syscalls`, as `stockade profile learn` writes it: the
    /// OCI/Docker format with `defaultAction` SCMP_ACT_ERRNO (EPERM), the native architecture,
    /// one rule allowing the syscalls (sorted), and clone3 answering ENOSYS, as every compiled
    /// profile does (so clone3 is never among the allowed ones). `comment` goes into
    /// `x-stockade.comment`: say how the profile was made. `auditRules` become its
    /// `x-stockade.audit`, for example the built-in default's.
    ///
    /// The text is deterministic: keys sorted, two-space indentation, names wrapped at 100
    /// columns, a final newline. A name that cannot be a syscall (empty, spaces or control
    /// characters) is left out; it parses back with ``parse(_:origin:)``.
    public static func learned(syscalls: Set<String>, comment: String,
                               auditRules: [AuditRule] = []) -> [UInt8] {
        let names = syscalls.filter { name in
            name != "clone3" && !name.isEmpty && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
        }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }

        var json = JSONWriter()
        json.open("{")
        if let native = SeccompCompiler.Host.current.architecture {
            json.member("architectures", inline: "[\(JSONWriter.quote(native.rawValue))]")
        }
        json.member("defaultAction", inline: JSONWriter.quote(SeccompAction.errno.rawValue))
        json.member("defaultErrnoRet", inline: "1")
        json.member("syscalls", open: "[")
        if !names.isEmpty {
            json.open("{")
            json.member("action", inline: JSONWriter.quote(SeccompAction.allow.rawValue))
            json.member("comment", inline: JSONWriter.quote("The syscalls seen while learning."))
            json.names(names)
            json.close("}")
        }
        json.open("{")
        json.member("action", inline: JSONWriter.quote(SeccompAction.errno.rawValue))
        json.member("comment", inline: JSONWriter.quote(
            "clone3 passes its flags in memory, where a filter cannot look: ENOSYS makes libc fall back to clone."))
        json.member("errnoRet", inline: "38")
        json.member("names", inline: #"["clone3"]"#)
        json.close("}")
        json.close("]")
        json.member("x-stockade", open: "{")
        if !auditRules.isEmpty {
            json.member("audit", open: "[")
            for rule in auditRules {
                json.open("{")
                if !rule.args.isEmpty {
                    json.member("args", open: "[")
                    for arg in rule.args {
                        json.element(#"{"index": \#(arg.index), "op": \#(JSONWriter.quote(arg.op.rawValue)), "#
                            + #""value": \#(arg.value), "valueTwo": \#(arg.valueTwo)}"#)
                    }
                    json.close("]")
                }
                if let comment = rule.comment { json.member("comment", inline: JSONWriter.quote(comment)) }
                json.names(rule.names)
                json.close("}")
            }
            json.close("]")
        }
        json.member("comment", inline: JSONWriter.quote(comment))
        json.close("}")
        json.close("}")
        return json.bytes
    }

    /// The syscalls this profile allows, for some arguments at least, where `base` (the
    /// built-in default, for `stockade profile check FILE`) refuses them: sorted native names.
    ///
    /// Judged from the rules as compiled for this machine: rules whose `includes`/`excludes`
    /// rule them out are left out, SCMP_ACT_ALLOW and SCMP_ACT_LOG allow, every other action
    /// refuses (stockade answers no notification or trace), and clone3 is never allowed.
    /// Conditions are compared by implication: `socket` with `arg0 == 2` is within a base rule
    /// allowing `arg0 == 2`, or `arg0 != 17`; a profile allowing `socket` unconditionally where
    /// the base allows only some families reports `socket`. Conditions that are equivalent but
    /// written differently may be reported; a widening never goes unreported.
    public func check(against base: SeccompProfile) -> [String] {
        let host = SeccompCompiler.Host.current
        let mine = AllowedCalls(self, on: host)
        let theirs = AllowedCalls(base, on: host)
        return mine.names.filter { !mine[$0].isWithin(theirs[$0]) }
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }
}

/// Which calls of each native syscall a profile lets through, per its rules.
private struct AllowedCalls {
    /// The calls of one syscall a profile allows. A group is a set of checks that must all hold.
    enum Region {
        case none
        case all
        /// The calls matching one of these groups.
        case only([[SeccompSyscall.Arg]])
        /// Every call but those matching one of these groups.
        case allExcept([[SeccompSyscall.Arg]])

        func isWithin(_ other: Region) -> Bool {
            switch (self, other) {
            case (.none, _), (_, .all): true
            case (_, .none), (.all, _): false
            case (.only(let mine), .only(let theirs)):
                mine.allSatisfy { group in theirs.contains { group.implies($0) } }
            case (.only(let mine), .allExcept(let refused)):
                mine.allSatisfy { group in refused.allSatisfy { group.isDisjoint(from: $0) } }
            case (.allExcept, .only):
                false
            case (.allExcept(let mine), .allExcept(let refused)):
                // Everything `other` refuses, this refuses too.
                refused.allSatisfy { group in mine.contains { group.implies($0) } }
            }
        }
    }

    private let defaultAllows: Bool
    private let rules: [String: [SeccompSyscall]]
    /// The syscalls with a rule, or every native one when the default allows.
    let names: [String]

    init(_ profile: SeccompProfile, on host: SeccompCompiler.Host) {
        defaultAllows = profile.defaultAction.allows
        var rules: [String: [SeccompSyscall]] = [:]
        for rule in profile.syscalls where host.applies(rule) {
            for name in Set(rule.names) where SeccompCompiler.syscallNumber(name) != nil {
                rules[name, default: []].append(rule)
            }
        }
        self.rules = rules
        names = defaultAllows ? SeccompCompiler.nativeSyscalls.map(\.name) : Array(rules.keys)
    }

    subscript(name: String) -> Region {
        // Every compiled profile answers clone3 with ENOSYS, or something stricter.
        if name == "clone3" { return .none }
        let rules = self.rules[name] ?? []
        if defaultAllows {
            let refusing = rules.filter { !$0.action.allows }
            if refusing.isEmpty { return .all }
            if refusing.contains(where: \.args.isEmpty) { return .none }
            return .allExcept(refusing.flatMap { SeccompCompiler.argGroups($0.args) })
        } else {
            let allowing = rules.filter(\.action.allows)
            if allowing.isEmpty { return .none }
            if allowing.contains(where: \.args.isEmpty) { return .all }
            return .only(allowing.flatMap { SeccompCompiler.argGroups($0.args) })
        }
    }
}

extension SeccompAction {
    /// Whether the call runs under stockade, which answers neither notifications nor traces.
    fileprivate var allows: Bool { self == .allow || self == .log }
}

extension SeccompSyscall.Arg {
    /// Whether a call whose argument is `value` passes this check (on all 64 bits, as libseccomp compares).
    func holds(for value: UInt64) -> Bool {
        switch op {
        case .notEqual: value != self.value
        case .lessThan: value < self.value
        case .lessOrEqual: value <= self.value
        case .equal: value == self.value
        case .greaterOrEqual: value >= self.value
        case .greaterThan: value > self.value
        case .maskedEqual: value & self.value == valueTwo
        }
    }

    /// Whether every value passing this check passes `other` (known cases only).
    func implies(_ other: SeccompSyscall.Arg) -> Bool {
        guard index == other.index else { return false }
        return self == other || (op == .equal && other.holds(for: value))
    }

    /// Whether no value passes both checks (known cases only).
    func excludes(_ other: SeccompSyscall.Arg) -> Bool {
        guard index == other.index else { return false }
        if op == .equal { return !other.holds(for: value) }
        if other.op == .equal { return !holds(for: other.value) }
        return op == .maskedEqual && other.op == .maskedEqual && value == other.value && valueTwo != other.valueTwo
    }
}

extension [SeccompSyscall.Arg] {
    /// Whether every call matching all of these checks matches all of `other`'s.
    func implies(_ other: [SeccompSyscall.Arg]) -> Bool {
        other.allSatisfy { check in contains { $0.implies(check) } }
    }

    func isDisjoint(from other: [SeccompSyscall.Arg]) -> Bool {
        contains { check in other.contains { check.excludes($0) } }
    }
}

/// Writes indented JSON line by line, the way the profiles in `profiles/` are laid out.
private struct JSONWriter {
    private(set) var text = ""
    private var depth = 0
    /// Whether the current container has a member already (one flag per open container).
    private var hasMembers: [Bool] = [false]

    var bytes: [UInt8] { Array((text + "\n").utf8) }

    private var indent: String { String(repeating: "  ", count: depth) }

    private mutating func startLine() {
        if hasMembers[hasMembers.count - 1] { text += "," }
        hasMembers[hasMembers.count - 1] = true
        if !text.isEmpty { text += "\n" }
        text += indent
    }

    /// Opens an anonymous container (the document, an array element).
    mutating func open(_ bracket: String) {
        startLine()
        text += bracket
        depth += 1
        hasMembers.append(false)
    }

    mutating func member(_ key: String, open bracket: String) {
        startLine()
        text += Self.quote(key) + ": " + bracket
        depth += 1
        hasMembers.append(false)
    }

    mutating func close(_ bracket: String) {
        depth -= 1
        let wasEmpty = !hasMembers.removeLast()
        text += wasEmpty ? bracket : "\n" + indent + bracket
    }

    mutating func member(_ key: String, inline value: String) {
        startLine()
        text += Self.quote(key) + ": " + value
    }

    mutating func element(_ value: String) {
        startLine()
        text += value
    }

    /// `"names": [...]`, on one line when short, else wrapped at 100 columns.
    mutating func names(_ names: [String]) {
        let quoted = names.map(Self.quote)
        let oneLine = "[" + quoted.joined(separator: ", ") + "]"
        guard indent.count + 9 + oneLine.count > 100 else {
            member("names", inline: oneLine)
            return
        }
        member("names", open: "[")
        let lineIndent = indent
        var line = ""
        for (index, name) in quoted.enumerated() {
            let piece = name + (index < quoted.count - 1 ? "," : "")
            if !line.isEmpty && lineIndent.count + line.count + 1 + piece.count > 100 {
                text += "\n" + lineIndent + line
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + piece
        }
        if !line.isEmpty { text += "\n" + lineIndent + line }
        hasMembers[hasMembers.count - 1] = true
        close("]")
    }

    static func quote(_ string: String) -> String { JSONText.quote(string) }
}

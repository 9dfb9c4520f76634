import JSON
extension SeccompProfile {
    /// Reads a profile from JSON text. `origin` names it in errors (a path, or `builtin:NAME`).
    ///
    /// Unknown top-level keys are ignored, as Docker and runc do, so existing profiles load.
    /// Inside `syscalls[]`, `args[]`, `includes`/`excludes`, `archMap[]`, `x-stockade` and its
    /// `audit[]` an unknown key is an error: a misspelt `args` would otherwise turn a narrow rule
    /// into a broad one.
    public static func parse(_ bytes: [UInt8], origin: String) throws(SeccompProfileError) -> SeccompProfile {
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes)
        } catch {
            throw SeccompProfileError(origin: origin, location: .text(line: error.line, column: error.column),
                                      reason: error.reason)
        }
        return try ProfileDecoder(origin: origin).profile(json)
    }
}

/// Turns parsed JSON into a ``SeccompProfile``, naming the JSON path of anything wrong.
private struct ProfileDecoder {
    let origin: String

    func profile(_ json: JSONValue) throws(SeccompProfileError) -> SeccompProfile {
        let root = try object(json, at: "$")

        guard let actionValue = optional(root, "defaultAction") else {
            throw error("$", "missing \"defaultAction\" (for example \"SCMP_ACT_ERRNO\")")
        }
        let defaultAction: SeccompAction = try token(actionValue, at: "$.defaultAction", kind: "action")
        var profile = SeccompProfile(defaultAction: defaultAction)
        profile.defaultErrnoRet = try errnoRet(root, key: "defaultErrnoRet", at: "$", for: defaultAction)

        if let value = optional(root, "architectures") {
            profile.architectures = try tokens(value, at: "$.architectures", kind: "architecture")
        }
        if let value = optional(root, "archMap") {
            profile.archMap = try elements(value, at: "$.archMap", archMapEntry)
        }
        if !profile.architectures.isEmpty && !profile.archMap.isEmpty {
            throw error("$.archMap", "both \"architectures\" and \"archMap\" are given; use one of them")
        }
        if let value = optional(root, "flags") {
            profile.flags = try tokens(value, at: "$.flags", kind: "flag")
        }
        if let value = optional(root, "listenerPath") {
            profile.listenerPath = try string(value, at: "$.listenerPath")
        }
        if let value = optional(root, "listenerMetadata") {
            profile.listenerMetadata = try string(value, at: "$.listenerMetadata")
        }
        if let value = optional(root, "syscalls") {
            profile.syscalls = try elements(value, at: "$.syscalls", syscall)
        }
        if let value = optional(root, "x-stockade") {
            let path = #"$["x-stockade"]"#
            let object = try object(value, at: path, keys: ["comment", "audit"])
            if let comment = optional(object, "comment") { _ = try string(comment, at: path + ".comment") }
            if let audit = optional(object, "audit") {
                profile.auditRules = try elements(audit, at: path + ".audit", auditRule)
            }
            profile.stockadeExtension = value
        }
        try checkContradictions(profile.syscalls)
        return profile
    }

    private func archMapEntry(_ json: JSONValue,
                              at path: String) throws(SeccompProfileError) -> SeccompProfile.ArchMapEntry {
        let object = try object(json, at: path, keys: ["architecture", "subArchitectures"])
        guard let architecture = optional(object, "architecture") else {
            throw error(path, "missing \"architecture\"")
        }
        var entry = SeccompProfile.ArchMapEntry(
            architecture: try token(architecture, at: path + ".architecture", kind: "architecture"))
        if let value = optional(object, "subArchitectures") {
            entry.subArchitectures = try tokens(value, at: path + ".subArchitectures", kind: "architecture")
        }
        return entry
    }

    private func syscall(_ json: JSONValue, at path: String) throws(SeccompProfileError) -> SeccompSyscall {
        let object = try object(json, at: path, keys: [
            "names", "name", "action", "errnoRet", "args", "comment", "includes", "excludes",
        ])
        let names: [String]
        switch (optional(object, "names"), optional(object, "name")) {
        case (.some, .some):
            throw error(path, "both \"names\" and \"name\" are given; use \"names\"")
        case (let value?, nil):
            names = try elements(value, at: path + ".names", syscallName)
            if names.isEmpty { throw error(path + ".names", "must name at least one syscall") }
        case (nil, let value?):
            names = [try syscallName(value, at: path + ".name")]
        case (nil, nil):
            throw error(path, "missing \"names\"")
        }
        guard let actionValue = optional(object, "action") else {
            throw error(path, "missing \"action\"")
        }
        let action: SeccompAction = try token(actionValue, at: path + ".action", kind: "action")
        var rule = SeccompSyscall(names: names, action: action)
        rule.errnoRet = try errnoRet(object, key: "errnoRet", at: path, for: action)
        if let value = optional(object, "args") {
            rule.args = try elements(value, at: path + ".args", arg)
        }
        if let value = optional(object, "comment") {
            rule.comment = try string(value, at: path + ".comment")
        }
        if let value = optional(object, "includes") {
            rule.includes = try filter(value, at: path + ".includes")
        }
        if let value = optional(object, "excludes") {
            rule.excludes = try filter(value, at: path + ".excludes")
        }
        return rule
    }

    /// One `x-stockade.audit[]` entry: `names`, optional `args` (as in `syscalls[]`), `comment`.
    private func auditRule(_ json: JSONValue, at path: String) throws(SeccompProfileError) -> AuditRule {
        let object = try object(json, at: path, keys: ["names", "args", "comment"])
        guard let namesValue = optional(object, "names") else { throw error(path, "missing \"names\"") }
        let names = try elements(namesValue, at: path + ".names", syscallName)
        if names.isEmpty { throw error(path + ".names", "must name at least one syscall") }
        var rule = AuditRule(names: names)
        if let value = optional(object, "args") {
            rule.args = try elements(value, at: path + ".args", arg)
        }
        if let value = optional(object, "comment") {
            rule.comment = try string(value, at: path + ".comment")
        }
        return rule
    }

    private func syscallName(_ json: JSONValue, at path: String) throws(SeccompProfileError) -> String {
        let name = try string(json, at: path)
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw error(path, "\(quoted(name)) is not a syscall name")
        }
        return name
    }

    private func arg(_ json: JSONValue, at path: String) throws(SeccompProfileError) -> SeccompSyscall.Arg {
        let object = try object(json, at: path, keys: ["index", "value", "valueTwo", "op"])
        guard let indexValue = optional(object, "index") else { throw error(path, "missing \"index\"") }
        let index = try integer(indexValue, at: path + ".index", in: 0...5)
        guard let opValue = optional(object, "op") else { throw error(path, "missing \"op\"") }
        let op: SeccompSyscall.Operator = try token(opValue, at: path + ".op", kind: "operator")
        var value: UInt64 = 0
        var valueTwo: UInt64 = 0
        if let json = optional(object, "value") { value = try uint64(json, at: path + ".value") }
        if let json = optional(object, "valueTwo") { valueTwo = try uint64(json, at: path + ".valueTwo") }
        if op == .maskedEqual && valueTwo & ~value != 0 {
            throw error(path, "SCMP_CMP_MASKED_EQ never matches: valueTwo \(hex(valueTwo)) has bits outside the mask "
                + "\(hex(value)) (value is the mask, valueTwo the expected result)")
        }
        return SeccompSyscall.Arg(index: index, value: value, valueTwo: valueTwo, op: op)
    }

    private func filter(_ json: JSONValue, at path: String) throws(SeccompProfileError) -> SeccompSyscall.Filter {
        let object = try object(json, at: path, keys: ["arches", "caps", "minKernel"])
        var filter = SeccompSyscall.Filter()
        if let value = optional(object, "arches") {
            let known = SeccompSyscall.Filter.knownArches
            filter.arches = try elements(value, at: path + ".arches") { (json, archPath) throws(SeccompProfileError) in
                let arch = try string(json, at: archPath)
                guard known.contains(arch) else {
                    throw error(archPath, "unknown architecture \(quoted(arch)) (expected one of "
                        + known.joined(separator: ", ") + ")")
                }
                return arch
            }
        }
        if let value = optional(object, "caps") {
            filter.caps = try elements(value, at: path + ".caps", string)
        }
        if let value = optional(object, "minKernel") {
            let release = try string(value, at: path + ".minKernel")
            let digits = UInt8(ascii: "0")...UInt8(ascii: "9")
            let parts = release.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy(digits.contains) }),
                  let version = KernelVersion(release: release) else {
                throw error(path + ".minKernel", "\(quoted(release)) is not a kernel version like \"5.8\"")
            }
            filter.minKernel = version
        }
        return filter
    }

    private func errnoRet(_ object: JSONObject, key: String, at path: String,
                          for action: SeccompAction) throws(SeccompProfileError) -> UInt16? {
        guard let value = optional(object, key) else { return nil }
        let keyPath = path == "$" ? "$." + key : path + "." + key
        guard action.takesErrno else {
            throw error(keyPath, "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno, not \(action.rawValue)")
        }
        // The kernel caps SECCOMP_RET_DATA at MAX_ERRNO (4095) for ERRNO; larger values mean nothing.
        return UInt16(try integer(value, at: keyPath, in: 0...4095))
    }

    /// Two rules that apply under the same conditions contradict each other when they give
    /// one syscall different actions and one of them is unconditional, or both check the same
    /// arguments: libseccomp would silently keep one of them.
    private func checkContradictions(_ rules: [SeccompSyscall]) throws(SeccompProfileError) {
        var seen: [String: [Int]] = [:]
        for (index, rule) in rules.enumerated() {
            for (nameIndex, name) in rule.names.enumerated() {
                for otherIndex in seen[name, default: []] {
                    let other = rules[otherIndex]
                    guard other.includes == rule.includes, other.excludes == rule.excludes,
                          other.args.isEmpty || rule.args.isEmpty || other.args == rule.args,
                          !other.hasSameEffect(as: rule) else { continue }
                    throw error("$.syscalls[\(index)].names[\(nameIndex)]",
                        "\(quoted(name)) contradicts $.syscalls[\(otherIndex)], which gives it "
                        + "\(other.effectDescription) under the same conditions")
                }
                if seen[name]?.last != index { seen[name, default: []].append(index) }
            }
        }
    }

    // MARK: Typed access

    /// A member, treating `null` as absent, as Go's encoding/json (Docker, runc) does.
    private func optional(_ object: JSONObject, _ key: String) -> JSONValue? {
        guard let value = object[key], value != .null else { return nil }
        return value
    }

    private func object(_ json: JSONValue, at path: String,
                        keys: [String]? = nil) throws(SeccompProfileError) -> JSONObject {
        guard case .object(let object) = json else { throw mismatch(json, at: path, expected: "an object") }
        if let keys {
            for member in object.members where !keys.contains(member.key) {
                throw error(path, "unknown key \(quoted(member.key)) (expected one of \(keys.joined(separator: ", ")))")
            }
        }
        return object
    }

    /// Each element of an array, read by `read` with its own path.
    private func elements<Element>(
        _ json: JSONValue, at path: String,
        _ read: (JSONValue, String) throws(SeccompProfileError) -> Element
    ) throws(SeccompProfileError) -> [Element] {
        guard case .array(let array) = json else { throw mismatch(json, at: path, expected: "an array") }
        var result: [Element] = []
        for (index, element) in array.enumerated() {
            result.append(try read(element, "\(path)[\(index)]"))
        }
        return result
    }

    private func string(_ json: JSONValue, at path: String) throws(SeccompProfileError) -> String {
        guard case .string(let string) = json else { throw mismatch(json, at: path, expected: "a string") }
        return string
    }

    private func uint64(_ json: JSONValue, at path: String) throws(SeccompProfileError) -> UInt64 {
        guard case .number(let number) = json else {
            throw mismatch(json, at: path, expected: "an integer from 0 to 18446744073709551615")
        }
        guard let value = number.uint64 else {
            throw error(path, "\(number) is not an integer from 0 to 18446744073709551615")
        }
        return value
    }

    private func integer(_ json: JSONValue, at path: String,
                         in range: ClosedRange<Int>) throws(SeccompProfileError) -> Int {
        let expected = "an integer from \(range.lowerBound) to \(range.upperBound)"
        guard case .number(let number) = json else { throw mismatch(json, at: path, expected: expected) }
        guard let value = number.int64, value >= range.lowerBound, value <= range.upperBound else {
            throw error(path, "\(number) is not \(expected)")
        }
        return Int(value)
    }

    /// A string naming one case of `Token`, such as an action or an architecture.
    private func token<Token: RawRepresentable & CaseIterable>(
        _ json: JSONValue, at path: String, kind: String
    ) throws(SeccompProfileError) -> Token where Token.RawValue == String {
        let name = try string(json, at: path)
        guard let token = Token(rawValue: name) else {
            let expected = Token.allCases.map(\.rawValue).joined(separator: ", ")
            throw error(path, "unknown \(kind) \(quoted(name)) (expected one of \(expected))")
        }
        return token
    }

    private func tokens<Token: RawRepresentable & CaseIterable>(
        _ json: JSONValue, at path: String, kind: String
    ) throws(SeccompProfileError) -> [Token] where Token.RawValue == String {
        try elements(json, at: path) { (element, elementPath) throws(SeccompProfileError) in
            try token(element, at: elementPath, kind: kind)
        }
    }

    private func mismatch(_ json: JSONValue, at path: String, expected: String) -> SeccompProfileError {
        let found = switch json {
        case .null: "null"
        case .bool(let value): "\(value)"
        case .number(let number): "the number \(number)"
        case .string(let string): "the string \(quoted(string))"
        case .array: "an array"
        case .object: "an object"
        }
        return error(path, "expected \(expected), found \(found)")
    }

    private func error(_ path: String, _ reason: String) -> SeccompProfileError {
        SeccompProfileError(origin: origin, location: .value(path: path), reason: reason)
    }

    private func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
}

extension SeccompSyscall {
    /// The errno (or trace message) this rule yields, with the format's EPERM default applied.
    var effectiveErrno: UInt16? { action.takesErrno ? errnoRet ?? 1 : nil }

    func hasSameEffect(as other: SeccompSyscall) -> Bool {
        action.normalized == other.action.normalized && effectiveErrno == other.effectiveErrno
    }

    var effectDescription: String {
        effectiveErrno.map { "\(action.rawValue) (errno \($0))" } ?? action.rawValue
    }
}

extension SeccompAction {
    /// `SCMP_ACT_KILL` is another name for `SCMP_ACT_KILL_THREAD`.
    var normalized: SeccompAction { self == .kill ? .killThread : self }
}

import BuildpackSpec

/// What the launcher runs: a process type from metadata.toml, or the user's own command.
enum Selection: Equatable {
    /// A process type, with the arguments the user gave (which replace or follow its `args`).
    case process(LaunchProcess, userArguments: [String])
    /// A command given by the user, run directly; no `<type>` directories apply.
    case userCommand([String])

    /// The process type whose `env.launch/<type>` and `exec.d/<type>` apply.
    var processType: String? {
        if case .process(let process, _) = self { return process.type }
        return nil
    }
}

/// Which process to run (Platform API 0.15, §8, with `CNB_PROCESS_TYPE` honoured), first match wins:
/// 1. argv[0]'s basename names a process type (the `/cnb/process/<type>` links);
/// 2. `CNB_PROCESS_TYPE` is set and not empty;
/// 3. `launcher -- cmd args`: the user's command, run directly;
/// 4. the default process (`buildpack-default-process-type`), with argv[1...] as user arguments;
/// 5. `launcher cmd args`: the user's command, run directly;
/// 6. nothing to run: an error.
/// A type named by argv[0] (other than the launcher's own names) or by `CNB_PROCESS_TYPE` that is not
/// defined is an error, not a fallback: running something else than asked would hide a broken image.
struct ProcessSelection {
    /// The names under which argv[0] means "the launcher itself", not a process type. The second is the
    /// name of the built product, so that it can be run in place.
    static let launcherNames: Set<String> = ["launcher", "stockade-launcher"]

    let metadata: MetadataTOML
    /// `CNB_EXEC_ENV`: `production` unless set.
    let executionEnvironment: String

    /// Processes whose `exec-env` is empty, `"*"`, or names the execution environment (Platform ≥ 0.15).
    /// An ineligible process counts as not defined.
    func isEligible(_ process: LaunchProcess) -> Bool {
        process.execEnv.isEmpty || process.execEnv.contains("*") || process.execEnv.contains(executionEnvironment)
    }

    /// The eligible process of this type.
    func process(ofType type: String) -> LaunchProcess? {
        metadata.processes.first { $0.type == type && isEligible($0) }
    }

    /// The eligible process types, in byte order, for messages.
    var definedTypes: [String] {
        metadata.processes.filter(isEligible).map(\.type).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    func select(arguments: [String], processTypeVariable: String?) throws(LaunchError) -> Selection {
        let userArguments = Array(arguments.dropFirst())
        let invokedAs = Self.basename(arguments.first ?? "")
        if !invokedAs.isEmpty && !Self.launcherNames.contains(invokedAs) {
            return .process(try defined(invokedAs, as: "process type"), userArguments: userArguments)
        }
        if let type = processTypeVariable, !type.isEmpty {
            return .process(try defined(type, as: "process type"), userArguments: userArguments)
        }
        if userArguments.first == "--" {
            let command = Array(userArguments.dropFirst())
            guard !command.isEmpty else { throw LaunchError("no command after \"--\"") }
            return .userCommand(command)
        }
        if let type = metadata.buildpackDefaultProcessType, !type.isEmpty {
            return .process(try defined(type, as: "default process type"), userArguments: userArguments)
        }
        if !userArguments.isEmpty { return .userCommand(userArguments) }
        throw LaunchError("there is no default process type and no command was given (defined: \(definedList))")
    }

    private func defined(_ type: String, as role: String) throws(LaunchError) -> LaunchProcess {
        if let process = process(ofType: type) { return process }
        throw LaunchError("\(role) \"\(type)\" is not defined (defined: \(definedList))")
    }

    private var definedList: String {
        let types = definedTypes
        return types.isEmpty ? "none" : types.joined(separator: ", ")
    }

    static func basename(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// What follows `command[0]`: `command[1:]`, then `args` or the user's arguments. User arguments replace
    /// `args`, except for a single-element command from a buildpack older than 0.9, where they follow them.
    func arguments(for process: LaunchProcess, userArguments: [String]) -> [String] {
        let fixed = Array(process.command.dropFirst())
        guard !userArguments.isEmpty else { return fixed + process.args }
        if process.command.count == 1, let api = buildpackAPI(of: process), api < APIVersion(0, 9) {
            return fixed + process.args + userArguments
        }
        return fixed + userArguments
    }

    /// The API of the buildpack that contributed the process; `nil` (treated as current) when unknown.
    func buildpackAPI(of process: LaunchProcess) -> APIVersion? {
        guard let id = process.buildpackID,
              let api = metadata.buildpacks.first(where: { $0.id == id })?.api else { return nil }
        return APIVersion(api)
    }
}

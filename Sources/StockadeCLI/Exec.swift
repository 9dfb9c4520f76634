import ArgumentParser
import Glibc
import Sandbox
import Seccomp

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec", abstract: "Run a command in a fresh namespace sandbox under a seccomp profile.",
        discussion: """
            The command runs as the stack user with no capabilities, in new user, mount, pid, \
            ipc, uts, cgroup and (unless --network host) network namespaces. Its exit status is \
            the command's own, 128+N when a signal N killed it, and 124 on --timeout.
            """)

    @OptionGroup var sandbox: SandboxOptions
    @OptionGroup var auditCaps: AuditCapOptions

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments, after `--`.")
    var command: [String] = []

    mutating func validate() throws {
        // Passthrough capture takes a help flag before `--` as the command; only after `--` is it one.
        if let first = command.first, first == "--help" || first == "-h" { throw CleanExit.helpRequest(self) }
        command = try ExecRequest.command(captured: command)
    }

    /// The values parsed, which `run()` works on.
    var request: ExecRequest {
        ExecRequest(sandbox: sandbox.request, auditCaps: auditCaps.request, command: command)
    }

    func run() throws { try request.run() }
}

/// `exec` as plain values, whichever parser filled it (see `ExecFastPath`).
struct ExecRequest: Equatable {
    var sandbox: SandboxRequest
    var auditCaps: AuditCaps
    var command: [String]

    /// The command as `.captureForPassthrough` took it, without a leading `--`.
    static func command(captured: [String]) throws -> [String] {
        let command = captured.first == "--" ? Array(captured.dropFirst()) : captured
        guard !command.isEmpty else { throw ValidationError("Missing the command to run, e.g. `stockade exec -- /bin/true`.") }
        return command
    }

    func run() throws {
        let configuration = try Configuration.load()
        var plan = try sandbox.plan(command: command, configuration: configuration)
        var observer: AuditObserver?
        var log: AuditLog?
        if let path = sandbox.audit {
            plan.syscallFilter = .audited(try ProfileSelection.auditFilters(
                named: sandbox.profileName(configuration), handoff: Sandbox.handoffDescriptor(plan.limits)))
            log = try AuditTrail.open(path, caps: auditCaps, configuration: configuration)
            observer = AuditObserver(sandbox: AuditTrail.newSandboxID(), sink: log)
        }
        let outcome: SandboxOutcome
        do {
            outcome = try Sandbox.run(plan, forwardSignals: true, audit: observer)
        } catch {
            complain(error.description)
            throw Failure(code: ExitStatus.of(error))
        }
        if let limit = outcome.limitReached { LimitOptions.report(limit, of: "the command") }
        if outcome.termination == .timedOut, let seconds = sandbox.timeout {
            complain("timed out after \(SandboxOptions.format(seconds)) s; the sandbox and everything in it was killed")
        }
        if let summary = outcome.audit {
            AuditTrail.report(summary)
            let finished = log?.finish() ?? true
            if summary.lost > 0 || !finished {
                complain("\(summary.lost) audit events could not be written to \(sandbox.audit ?? "")")
                throw Failure(code: ExitStatus.system)
            }
        }
        throw Failure(code: outcome.termination.exitCode)
    }
}

import Glibc
import Seccomp

/// Host directories the stack user writes into, and what is left of them
/// afterwards. Which host id the stack user is (IdentityMapping) decides how.
public enum StackUserFiles {
    /// Lets the stack user write everywhere beneath `path` (a directory the
    /// caller made and keeps private): root hands the tree to the mapped ids;
    /// an invoker that is itself the stack user has nothing to do; with a
    /// subordinate range, which an unprivileged user cannot chown to, the
    /// tree becomes writable by all (its private parent keeps others out).
    /// Symlinks inside are never followed.
    public static func makeWritable(_ path: String, for user: StackUser) throws(SandboxError) {
        let mapping = try IdentityMapping.forCurrentProcess(user)
        let command: [String]
        if geteuid() == 0, let uid = mapping.hostUID(user.uid), let gid = mapping.hostGID(user.gid) {
            command = ["/bin/chown", "-R", "-h", "-P", "\(uid):\(gid)", "--", path]
        } else if mapping.setupIdentity == nil {
            return
        } else {
            command = ["/bin/chmod", "-R", "a+rwX", "--", path]
        }
        let status = try Spawn.wait(try Spawn.start(command), command[0])
        guard status == 0 else {
            throw SandboxError(.system, "\(command.joined(separator: " ")) failed with status \(status)")
        }
    }

    /// Removes everything beneath `path` and `path` itself, including files
    /// the stack user made that the invoker cannot delete (a subordinate
    /// range): those go from inside a sandbox, as the stack user.
    public static func removeTree(_ path: String, for user: StackUser) throws(SandboxError) {
        if try remove(path) { return }
        // What is left lies in directories the stack user made. Open ours to it
        // (chmod only changes what we own), then let it delete its own.
        _ = try Spawn.wait(try Spawn.start(["/bin/chmod", "-R", "a+rwX", "--", path], quiet: true), "/bin/chmod")
        let plan = SandboxPlan(command: ["/usr/bin/find", "/doomed", "-mindepth", "1", "-delete"], user: user,
                               mounts: [.bind(source: path, destination: "/doomed", readOnly: false)],
                               syscallFilter: .profile(try defaultProfile()))
        let outcome = try Sandbox.run(plan)
        guard outcome.termination == .exited(0), try remove(path) else {
            throw SandboxError(.system, "cannot remove \(path): files of the stack user remain")
        }
    }

    /// rm -rf as the invoker; whether nothing is left.
    private static func remove(_ path: String) throws(SandboxError) -> Bool {
        _ = try Spawn.wait(try Spawn.start(["/bin/rm", "-rf", "--", path], quiet: true), "/bin/rm")
        return access(path, F_OK) != 0
    }

    private static func defaultProfile() throws(SandboxError) -> BPFProgram {
        do {
            let source = try ProfileSource.resolve("default")
            return try SeccompCompiler.compile(source, cache: FilterCache.forCurrentUser()).program
        } catch {
            throw SandboxError(.system, "cannot compile the default profile: \(error)")
        }
    }
}

import BuildpackSpec
import Glibc

// The launcher every exported image carries at /cnb/lifecycle/launcher; /cnb/process/<type> link to it.
// It picks a process, builds its environment from the layers, runs exec.d, then execs the process.
// Everything under the layers directory was written by buildpacks, so it is read confined and a bad
// file is an error, never a crash. Every failure is one line on stderr and exit 82 (Platform API §launcher).

do {
    try Launcher(arguments: CommandLine.arguments, environment: Environment(envp: processEnvironment())).launch()
} catch {
    LaunchError.exit(describing: error)
}

/// The launcher's own environment, from `environ`.
func processEnvironment() -> [String] {
    var out: [String] = []
    var cursor = environ
    while let entry = cursor.pointee {
        out.append(String(cString: entry))
        cursor += 1
    }
    return out
}

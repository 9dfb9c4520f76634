import BuildpackSpec
import Glibc

/// One launch: read metadata.toml, select the process, build its environment, run exec.d, exec it.
struct Launcher {
    let arguments: [String]
    let environment: Environment

    /// `$CNB_LAYERS_DIR`, or `/layers`.
    var layersDirectory: String { value("CNB_LAYERS_DIR") ?? "/layers" }
    /// `$CNB_APP_DIR`, or `/workspace`.
    var appDirectory: String { value("CNB_APP_DIR") ?? "/workspace" }

    private func value(_ name: String) -> String? {
        guard let value = environment[name], !value.isEmpty else { return nil }
        return value
    }

    func launch() throws -> Never {
        // The layers directory is the platform's (it comes from the image config), so its path is trusted;
        // everything below it is read confined.
        let root = try ConfinedDirectory(path: layersDirectory)
        let metadata = try MetadataTOML.read(from: root, at: "config/" + MetadataTOML.defaultFileName)
        let selection = ProcessSelection(metadata: metadata, executionEnvironment: value("CNB_EXEC_ENV") ?? "production")
        let selected = try selection.select(arguments: arguments, processTypeVariable: environment["CNB_PROCESS_TYPE"])

        var env = environment.withoutLauncherSettings()
        let buildpacks = try BuildpackLaunchLayers.scan(root, buildpacks: metadata.buildpacks)
        for buildpack in buildpacks {
            try env.applyLaunchLayers(buildpack, in: root, processType: selected.processType)
        }
        try ExecD(root: root, appDirectory: appDirectory).run(buildpacks, processType: selected.processType,
                                                              environment: &env)

        switch selected {
        case .userCommand(let command):
            try ProcessImage.replace(command, environment: env, workingDirectory: appDirectory)
        case .process(let process, let userArguments):
            guard let executable = process.command.first, !executable.isEmpty else {
                throw LaunchError("process type \"\(process.type)\" has no command")
            }
            let arguments = selection.arguments(for: process, userArguments: userArguments)
            // A relative working-dir is taken from the app directory, where the image starts.
            let workingDirectory = process.workingDirectory.flatMap { directory in
                directory.isEmpty ? nil : directory.hasPrefix("/") ? directory : appDirectory + "/" + directory
            } ?? appDirectory
            if process.direct {
                try ProcessImage.replace([executable] + arguments, environment: env, workingDirectory: workingDirectory)
            }
            // A shell process (Buildpack API < 0.9, `direct = false`): `command` is a bash script and the
            // arguments its positional parameters. No other shell stands in for bash: the script was
            // written for it. (profile.d is not sourced.)
            try ProcessImage.replace(["bash", "-c", executable + " \"$@\"", "bash"] + arguments, environment: env,
                                     workingDirectory: workingDirectory,
                                     missing: "process type \"\(process.type)\" runs through bash (direct = false), and bash is not on PATH")
        }
    }
}

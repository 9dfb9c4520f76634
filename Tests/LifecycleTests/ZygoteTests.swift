import Foundation
import StockadeTestSupport
import Testing

/// `detect` and `build` have each buildpack's sandbox cloned by a zygote forked at start,
/// not by the grown, multithreaded supervisor: it goes with the supervisor, and when it is
/// gone the supervisor clones the rest itself.
@Suite struct ZygoteTests {
    let fx = Fixture.shared

    @Test(arguments: Invoker.all)
    func eachBuildpackSandboxIsClonedByTheZygote(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let app = fx.makeDirectory("app")
        let built = try fx.scriptBuildpack(id: "test/built", build: "echo \"build pid 1: $(cat /proc/1/comm)\"")
        let build = fx.stockade(["build", "--buildpack", built, "--path", app], as: invoker)
        #expect(build.status == 0, "\(build)")
        #expect(build.stdout.contains("build pid 1: stockade-zygote"), "\(build)")
        // Detect's output reaches the user only in the message of a failed detect.
        let failing = try fx.scriptBuildpack(id: "test/detected", detect: "echo \"detect pid 1: $(cat /proc/1/comm)\"; exit 1",
                                             build: "exit 0")
        let detect = fx.stockade(["detect", "--buildpack", failing, "--path", app], as: invoker)
        #expect(detect.stderr.contains("detect pid 1: stockade-zygote"), "\(detect)")
        // One sandbox: `exec` clones its own.
        let exec = fx.exec([], ["/bin/cat", "/proc/1/comm"], as: invoker)
        #expect(exec.status == 0 && exec.stdout == "stockade\n", "\(exec)")
    }

    /// A phase run as root becomes the stack user first; its zygote is forked after, so its
    /// sandboxes are the stack user's too (a root zygote's could not be mapped nor killed).
    @Test func aPhaseForksItsZygoteAsTheStackUser() throws {
        let store = fx.makeDirectory("buildpacks")
        _ = try Self.buildpack(in: store, id: "test/peek", detect: "echo \"pid 1: $(cat /proc/1/comm)\"; exit 1", build: "exit 0")
        let order = fx.makeDirectory("order") + "/order.toml"
        try "[[order]]\n[[order.group]]\nid = \"test/peek\"\nversion = \"0.0.1\"\n".write(toFile: order, atomically: true, encoding: .utf8)
        chmod(order, 0o644)
        let stackUser = fx.isRoot ? fx.plainUID : getuid()
        let run = LifecycleLinks().run("detector", [], environment: [
            "CNB_PLATFORM_API": "0.15", "CNB_USER_ID": "\(stackUser)", "CNB_GROUP_ID": "\(stackUser)",
            "CNB_BUILDPACKS_DIR": store, "CNB_ORDER_PATH": order, "CNB_APP_DIR": fx.makeDirectory("app"),
            "CNB_LAYERS_DIR": fx.makeDirectory("layers", mode: 0o777), "CNB_PLATFORM_DIR": fx.makeDirectory("platform"),
        ])
        #expect(run.stdout.contains("pid 1: stockade-zygote") || run.stderr.contains("pid 1: stockade-zygote"), "\(run)")
    }

    @Test(arguments: Invoker.all)
    func theZygoteEndsWithItsSupervisor(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let marker = String(Int.random(in: 100_000...999_999))
        let sleeper = try fx.scriptBuildpack(id: "test/sleeper", detect: "sleep \(marker)", build: "exit 0")
        let supervisor = try Self.start(["detect", "--buildpack", sleeper, "--path", fx.makeDirectory("app")], as: invoker)
        defer { kill(supervisor.processIdentifier, SIGKILL); supervisor.waitUntilExit() }
        #expect(Self.waitFor { !Fixture.processes(mentioning: "sleep \(marker)").isEmpty }, "bin/detect never started")
        let zygote = try #require(Self.zygote(of: supervisor.processIdentifier), "no zygote under the supervisor")
        kill(supervisor.processIdentifier, SIGKILL)
        supervisor.waitUntilExit()
        #expect(Self.waitFor { !Self.isRunning(zygote) }, "the zygote outlived its supervisor")
        #expect(Self.waitFor { Fixture.processes(mentioning: "sleep \(marker)").isEmpty }, "the sandbox outlived its supervisor")
    }

    /// Group 1's bin/detect waits, the test kills the zygote, group 1 fails; group 2's
    /// sandboxes, detect and build, are then the supervisor's own clones.
    @Test func whenTheZygoteIsGoneTheSupervisorClonesItself() throws {
        let marker = String(Int.random(in: 100_000...999_999))
        let store = fx.makeDirectory("buildpacks")
        let waiting = try Self.buildpack(in: store, id: "test/waiting", detect: """
            while [ ! -e "$CNB_BUILDPACK_DIR/go" ]; do sleep 0.05\(marker); done
            exit 100
            """, build: "exit 0")
        _ = try Self.buildpack(in: store, id: "test/after", detect: "exit 0",
                               build: "echo \"build pid 1: $(cat /proc/1/comm)\"")
        let order = fx.makeDirectory("order") + "/order.toml"
        try """
            [[order]]
            [[order.group]]
            id = "test/waiting"
            version = "0.0.1"
            [[order]]
            [[order.group]]
            id = "test/after"
            version = "0.0.1"
            """.write(toFile: order, atomically: true, encoding: .utf8)
        chmod(order, 0o644)
        let out = fx.makeDirectory("out", mode: 0o777) + "/stdout"
        let supervisor = try Self.start(["build", "--buildpacks-dir", store, "--order", order, "--path", fx.makeDirectory("app")],
                                        as: .suiteUser, stdout: out)
        defer { kill(supervisor.processIdentifier, SIGKILL); supervisor.waitUntilExit() }
        #expect(Self.waitFor { !Fixture.processes(mentioning: "sleep 0.05\(marker)").isEmpty }, "bin/detect never started")
        let zygote = try #require(Self.zygote(of: supervisor.processIdentifier), "no zygote under the supervisor")
        kill(zygote, SIGKILL)
        #expect(Self.waitFor { !Self.isRunning(zygote) })
        FileManager.default.createFile(atPath: waiting + "/go", contents: nil)
        supervisor.waitUntilExit()
        let stdout = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        #expect(supervisor.terminationStatus == 0, "\(stdout)")
        // pid 1 is then a copy of the supervisor's thread that cloned it, and has its name.
        #expect(stdout.contains("build pid 1: ") && !stdout.contains("build pid 1: stockade-zygote"), "\(stdout)")
    }

    /// With a subordinate range, each sandbox's user namespace is nested in one the zygote entered
    /// for the run, which newuidmap and newgidmap mapped once: a buildpack sees the run's ids, not
    /// the host's. Every invoker: each buildpack has a namespace of its own, and the supervisor
    /// still stops one that overruns.
    @Test(.timeLimit(.minutes(5)), arguments: Invoker.all)
    func eachSandboxHasItsOwnUserNamespace(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let store = fx.makeDirectory("buildpacks")
        let peek = "echo \"map[$(head -n 1 /proc/self/uid_map | tr -s ' ' | sed 's/^ //')] ns[$(readlink /proc/self/ns/user)]\"; exit 1"
        for id in ["test/one", "test/two"] { _ = try Self.buildpack(in: store, id: id, detect: peek, build: "exit 0") }
        let order = fx.makeDirectory("order") + "/order.toml"
        let groups = ["test/one", "test/two"].map { "[[order.group]]\nid = \"\($0)\"\nversion = \"0.0.1\"\n" }
        try ("[[order]]\n" + groups.joined()).write(toFile: order, atomically: true, encoding: .utf8)
        chmod(order, 0o644)
        let app = fx.makeDirectory("app")
        let detect = fx.stockade(["detect", "--buildpacks-dir", store, "--order", order, "--path", app], as: invoker)
        var maps: [String] = [], namespaces = Set<String>()
        for line in (detect.stdout + detect.stderr).split(separator: "\n") where line.contains("err:") {
            guard let map = line.firstRange(of: "map["), let ns = line.firstRange(of: "] ns["), let end = line.lastIndex(of: "]") else { continue }
            maps.append(String(line[map.upperBound..<ns.lowerBound]))
            namespaces.insert(String(line[ns.upperBound..<end]))
        }
        #expect(maps.count == 2 && namespaces.count == 2, "\(detect)")
        for map in maps {
            let fields = map.split(separator: " ").compactMap { UInt32($0) }
            try #require(fields.count == 3, "\(map)")
            if invoker == .subordinateUser {
                #expect(fields[0] == 0 && fields[1] == 0 && fields[2] > 1000, "not nested in the run's namespace: \(map)")
            } else {
                #expect(fields[1] + (1000 - fields[0]) == invoker.hostStackUID, "\(map)")
            }
        }
        let sleepy = try fx.scriptBuildpack(id: "test/sleepy", detect: "sleep 600", build: "exit 0")
        let stopped = fx.stockade(["detect", "--buildpack", sleepy, "--path", app, "--timeout", "1"], as: invoker)
        #expect(stopped.status == 21 && stopped.stdout.contains("timeout"), "\(stopped)")
    }

    static func buildpack(in store: String, id: String, detect: String, build: String) throws -> String {
        let dir = store + "/" + id.replacingOccurrences(of: "/", with: "_") + "/0.0.1"
        try FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        try "api = \"0.10\"\n[buildpack]\nid = \"\(id)\"\nversion = \"0.0.1\"\n"
            .write(toFile: dir + "/buildpack.toml", atomically: true, encoding: .utf8)
        try ("#!/bin/sh\n" + detect + "\n").write(toFile: dir + "/bin/detect", atomically: true, encoding: .utf8)
        try ("#!/bin/sh\n" + build + "\n").write(toFile: dir + "/bin/build", atomically: true, encoding: .utf8)
        for path in [dir + "/bin/detect", dir + "/bin/build"] { chmod(path, 0o755) }
        return dir
    }

    /// `stockade ARGS` as `invoker`, running (setpriv execs it: the pid is the supervisor's).
    static func start(_ args: [String], as invoker: Invoker, stdout: String? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = invoker.prefix + [Fixture.shared.stockade] + args
        if let stdout { FileManager.default.createFile(atPath: stdout, contents: nil) }
        process.standardOutput = try stdout.map { try FileHandle(forWritingTo: URL(fileURLWithPath: $0)) } ?? FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// The child of `supervisor` named stockade-zygote.
    static func zygote(of supervisor: pid_t) -> pid_t? {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if stat.contains("(stockade-zygote)"), fields.count > 1, pid_t(fields[1]) == supervisor { return pid }
        }
        return nil
    }

    /// Neither running nor stopped: gone, or a zombie for init to reap.
    static func isRunning(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
    }

    static func waitFor(_ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }
}

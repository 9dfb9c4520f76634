import CrashSafety
import Foundation
import StockadeTestSupport
import Testing

/// A `stockade build --output --cache-dir` killed with SIGKILL, at every fault point and at a
/// random moment of a buildpack's build, or failing on a full disk, leaves no process, mount,
/// cgroup or temporary directory of its own, and an output layout and a cache that are each
/// as they were or complete.
@Suite struct CrashTests {
    let fx = Fixture.shared

    /// `test/crash`: detect and build say they are running; build makes a launch and a cache
    /// layer whose content is `$ROUND` (so every round writes new blobs), `$LAUNCH_MB` and
    /// `$CACHE_MB` MiB of it, leaves a process behind named `$MARKER`, then, with `$FILES`,
    /// writes that many small files one by one.
    static let buildpack: String = {
        let dir = Fixture.shared.makeDirectory("bp-crash")
        try! FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        try! "api = \"0.10\"\n\n[buildpack]\nid = \"test/crash\"\nversion = \"0.0.1\"\n"
            .write(toFile: dir + "/buildpack.toml", atomically: true, encoding: .utf8)
        try! """
            #!/bin/sh
            set -eu
            echo "crash: detect running"
            head -c $((${DETECT_MB:-0} * 1048576)) /dev/zero >> "$CNB_BUILD_PLAN_PATH"
            """.write(toFile: dir + "/bin/detect", atomically: true, encoding: .utf8)
        try! """
            #!/bin/sh
            set -eu
            layers="$CNB_LAYERS_DIR"
            cp /bin/sleep "/tmp/$MARKER"
            "/tmp/$MARKER" 3600 &
            echo "crash: build running"
            mkdir -p "$layers/app" "$layers/cached"
            printf '[types]\\nlaunch = true\\n' > "$layers/app.toml"
            printf '[types]\\ncache = true\\n' > "$layers/cached.toml"
            head -c $((${LAUNCH_MB:-0} * 1048576 + 1)) /dev/zero | tr '\\0' "$ROUND" > "$layers/app/data"
            head -c $((${CACHE_MB:-0} * 1048576 + 1)) /dev/zero | tr '\\0' "$ROUND" > "$layers/cached/data"
            i=0
            while [ "$i" -lt "${FILES:-0}" ]; do echo "$ROUND $i" > "$layers/app/f$i"; i=$((i + 1)); done
            echo "crash: build done"
            """.write(toFile: dir + "/bin/build", atomically: true, encoding: .utf8)
        _ = Fixture.run(["chmod", "-R", "a+rX", dir])
        chmod(dir + "/bin/detect", 0o755)
        chmod(dir + "/bin/build", 0o755)
        return dir
    }()

    /// Everything one crash test touches, in directories of its own.
    struct Scene {
        let app: String
        let output: String
        let cache: String
        /// The builds' TMPDIR: nothing else writes there, so its entries are exactly the builds'.
        let tmp: String
        let marker = "crashmark-" + UUID().uuidString.prefix(8).lowercased()

        init(in base: String? = nil) {
            let fx = Fixture.shared
            app = fx.makeDirectory("crash-app")
            try! "echo hi\n".write(toFile: app + "/app.sh", atomically: true, encoding: .utf8)
            let root = base ?? fx.makeDirectory("crash", mode: 0o777)
            output = root + "/out"
            cache = root + "/cache"
            tmp = root + "/tmp"
            mkdir(tmp, 0o777)
            chmod(tmp, 0o777)
        }

        /// `stockade build` of round `round` as `invoker`, with TMPDIR the scene's own.
        func build(round: String, env: [String] = [], options: [String] = [], as invoker: Invoker,
                   environment: [String: String] = [:], killWhen line: String? = nil, group: Bool = false) throws -> Finished {
            try CrashTests.run(arguments(round: round, env: env) + options, as: invoker,
                               environment: environment.merging(["TMPDIR": tmp]) { $1 }, killWhen: line, group: group)
        }

        func arguments(round: String, env: [String] = []) -> [String] {
            ["build", "--buildpack", CrashTests.buildpack, "--path", app, "--network", "none",
             "--output", output + ":app", "--cache-dir", cache, "--env", "ROUND=\(round)", "--env", "MARKER=\(marker)"]
                + env.flatMap { ["--env", $0] }
        }
    }

    /// What the layouts and the host looked like before the killed build.
    struct Before {
        let outputIndex: String?
        let outputManifest: String?
        let cacheIndex: String?
        let cacheManifest: String?

        init(_ scene: Scene) {
            outputIndex = Images.text(scene.output + "/index.json")
            outputManifest = Images.manifestDigest(scene.output)
            cacheIndex = Images.text(scene.cache + "/index.json")
            cacheManifest = Images.manifestDigest(scene.cache, tag: "cache")
        }
    }

    /// `stockade ARGS` as `invoker` with `environment` added; `killWhen`, when given, is waited
    /// for in stdout and then the supervisor gets SIGKILL after a random delay of up to 200 ms,
    /// or with `group`, its whole process group (Process gives it one of its own).
    /// Returns once stderr closes: the janitor keeps it open until it has cleaned up.
    static func run(_ args: [String], as invoker: Invoker, environment: [String: String],
                    killWhen line: String? = nil, group: Bool = false) throws -> Finished {
        let out = Fixture.shared.dir + "/crash-out-" + UUID().uuidString
        FileManager.default.createFile(atPath: out, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: out) }
        let errors = Pipe()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = environment.map { "\($0.key)=\($0.value)" } + invoker.prefix + [Fixture.shared.stockade] + args
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        if let line {
            let deadline = Date().addingTimeInterval(120)
            while Date() < deadline, process.isRunning, !(Images.text(out) ?? "").contains(line) { usleep(1000) }
            usleep(UInt32.random(in: 0...200_000))
            if group {
                try #require(getpgid(process.processIdentifier) == process.processIdentifier, "stockade has no group of its own")
                kill(-process.processIdentifier, SIGKILL)
            } else {
                kill(process.processIdentifier, SIGKILL)
            }
        }
        process.waitUntilExit()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return Finished(outcome: Outcome(status: status, stdout: Images.text(out) ?? "", stderr: stderr),
                        pid: process.processIdentifier)
    }

    /// A run's outcome and its supervisor's pid (setpriv execs stockade in its own process).
    struct Finished: CustomStringConvertible {
        let outcome: Outcome
        let pid: pid_t
        var status: Int32 { outcome.status }
        var stdout: String { outcome.stdout }
        var stderr: String { outcome.stderr }
        var description: String { "pid \(pid), \(outcome)" }
    }

    /// Cgroups left of the run whose supervisor was `pid`: sandboxes get theirs under
    /// `stockade` in the invoker's own cgroup of each controller (which the suite shares),
    /// named `<supervisor pid>.<its start time>.<n>`.
    static func cgroups(ofSupervisor pid: pid_t) -> [String] {
        let fm = FileManager.default
        var found: [String] = []
        let own = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? ""
        for line in own.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let controller = fields[1].split(separator: ",").first.map(String.init) ?? "unified"
            let mount = controller.isEmpty || controller == "unified" ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup/\(controller)"
            let parent = mount + (fields[2] == "/" ? "" : String(fields[2])) + "/stockade"
            guard let enumerator = fm.enumerator(atPath: parent) else { continue }
            while let entry = enumerator.nextObject() as? String {
                if entry.split(separator: "/").last?.hasPrefix("\(pid).") == true { found.append(parent + "/" + entry) }
            }
        }
        return found
    }

    enum Expected { case asBefore, complete }

    /// The guarantees after the run: nothing of it left on the host, each layout as before or
    /// complete (and, when `output`/`cache` are given, which of the two).
    func checkAftermath(_ scene: Scene, before: Before, run: Finished,
                        output: Expected? = nil, cache: Expected? = nil) {
        #expect(Fixture.processes(mentioning: scene.marker).isEmpty, "\(Fixture.processes(mentioning: scene.marker))\n\(run)")
        let mounts = (Images.text("/proc/self/mountinfo") ?? "").split(separator: "\n")
        #expect(!mounts.contains { $0.contains(scene.tmp) || $0.contains(scene.output) || $0.contains(scene.app) })
        #expect(Self.cgroups(ofSupervisor: run.pid).isEmpty, "\(Self.cgroups(ofSupervisor: run.pid))")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: scene.tmp)) ?? ["unreadable"]
        #expect(left.isEmpty, "left in TMPDIR: \(left)\n\(run)")
        checkLayout(scene.output, tag: "app", index: before.outputIndex, manifest: before.outputManifest,
                    expected: output, run: run)
        checkLayout(scene.cache, tag: "cache", index: before.cacheIndex, manifest: before.cacheManifest,
                    expected: cache, run: run)
    }

    func checkLayout(_ layout: String, tag: String, index: String?, manifest: String?, expected: Expected?, run: Finished) {
        let unchanged = Images.text(layout + "/index.json") == index && Images.manifestDigest(layout, tag: tag) == manifest
        if let expected { #expect(unchanged == (expected == .asBefore), "\(layout): \(run)") }
        // Nothing half-written beside the layout's own files (an index.json temporary).
        let top = Set((try? FileManager.default.contentsOfDirectory(atPath: layout)) ?? [])
        #expect(top.isSubset(of: ["blobs", "index.json", "oci-layout"]), "\(layout): \(top)")
        if !unchanged {
            let inspected = Fixture.run(["skopeo", "inspect", "oci:\(layout):\(tag)"])
            #expect(inspected.status == 0, "\(inspected)")
            #expect(Images.manifestDigest(layout, tag: tag) != manifest)
        }
        for blob in Images.blobs(layout) {
            #expect(Images.sha256(layout + "/blobs/sha256/" + blob) == "sha256:" + blob, "\(layout): blob \(blob)")
        }
    }

    /// Where each fault point leaves the output and the cache.
    static func expected(_ point: FaultPoint) -> (output: Expected, cache: Expected) {
        switch point {
        case .detect, .build, .exportLayer, .indexRename: (.asBefore, .asBefore)
        case .cacheBlobsWritten: (.complete, .asBefore)
        case .cacheTagMoved: (.complete, .complete)
        }
    }

    @Test(arguments: Invoker.all, FaultPoint.allCases)
    func aBuildKilledAtAFaultPointLeavesNothingBehind(invoker: Invoker, point: FaultPoint) throws {
        let scene = Scene()
        let first = try scene.build(round: "a", as: invoker)
        try #require(first.status == 0 && first.stdout.contains("Cache saved"), "\(first)")
        let before = Before(scene)

        let killed = try scene.build(round: "b", as: invoker, environment: ["STOCKADE_FAULT": point.rawValue])
        #expect(killed.status == 128 + SIGKILL, "\(killed)")
        #expect(killed.stderr.contains("stockade: fault point \(point.rawValue): SIGKILL"), "\(killed)")
        let (output, cache) = Self.expected(point)
        checkAftermath(scene, before: before, run: killed, output: output, cache: cache)

        // The next build restores from whichever cache is there, without a warning.
        let next = try scene.build(round: "a", as: invoker)
        #expect(next.status == 0 && !next.stdout.contains("warning") && !next.stderr.contains("warning"), "\(next)")
        #expect(next.stdout.contains("Restored layer 'test/crash:cached' from the cache"), "\(next)")
    }

    /// A first build creates the output and the cache: killed before a layout holds its tag, that
    /// layout is removed again (as before: absent); one with its tag stays.
    @Test(arguments: Invoker.all, [FaultPoint.exportLayer, .cacheBlobsWritten])
    func aFirstBuildKilledLeavesNoHalfMadeLayout(invoker: Invoker, point: FaultPoint) throws {
        let scene = Scene()
        let killed = try scene.build(round: "a", as: invoker, environment: ["STOCKADE_FAULT": point.rawValue])
        #expect(killed.stderr.contains("stockade: fault point \(point.rawValue): SIGKILL"), "\(killed)")
        let fm = FileManager.default
        #expect(fm.fileExists(atPath: scene.output) == (point == .cacheBlobsWritten), "\(killed)")
        #expect(!fm.fileExists(atPath: scene.cache), "\(killed)")
        if point == .cacheBlobsWritten {
            #expect(Fixture.run(["skopeo", "inspect", "oci:\(scene.output):app"]).status == 0)
        }
        #expect((try? fm.contentsOfDirectory(atPath: scene.tmp))?.isEmpty == true)
        #expect(Fixture.processes(mentioning: scene.marker).isEmpty)
    }

    /// Killed from outside: the supervisor alone, or its whole process group (as a terminal's
    /// ^C or a service manager would), which the janitor, in a session of its own, survives.
    @Test(arguments: Invoker.all, [false, true])
    func aBuildKilledWhileABuildpackRunsLeavesNothingBehind(invoker: Invoker, group: Bool) throws {
        let scene = Scene()
        let first = try scene.build(round: "a", as: invoker)
        try #require(first.status == 0, "\(first)")
        let before = Before(scene)
        let killed = try scene.build(round: "b", env: ["FILES=2000"], as: invoker, killWhen: "crash: build running",
                                     group: group)
        #expect(killed.status == 128 + SIGKILL, "\(killed)")
        checkAftermath(scene, before: before, run: killed)
    }

    /// `stockade run` extracts the image into TMPDIR: killed while the process runs, the
    /// extracted tree goes too.
    @Test(arguments: Invoker.all)
    func aKilledRunLeavesNoExtractedImage(invoker: Invoker) throws {
        let marker = "crashmark-" + UUID().uuidString.prefix(8).lowercased()
        let layout = try Images.craftedLayout([["bin/sleep", "symlink", "busybox"]],
                                              command: "echo started; sh -c 'sleep 4000; true' \(marker)")
        let tmp = fx.makeDirectory("crash-run-tmp", mode: 0o777)
        let killed = try Self.run(["run", layout + ":latest"], as: invoker, environment: ["TMPDIR": tmp], killWhen: "started")
        #expect(killed.status == 128 + SIGKILL, "\(killed)")
        #expect(killed.stdout.contains("started"), "\(killed)")
        #expect(Fixture.processes(mentioning: marker).isEmpty, "\(Fixture.processes(mentioning: marker))")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: tmp))?.isEmpty == true, "\(killed)")
    }

    /// Where a full disk stops the build.
    static let fullDiskPhases = ["detect", "build", "export", "cache save"]

    /// How much space to leave free (MiB) and what the buildpack writes, so that the disk fills
    /// in `phase`: `launcher` is the launcher layer's size in MiB, which an export writes (and
    /// drops, when the layout has it) even when nothing changed.
    static func fullDisk(_ phase: String, launcher: Int) -> (free: Int, env: [String]) {
        switch phase {
        case "detect": (1, ["DETECT_MB=2"])
        case "build": (2, ["LAUNCH_MB=4"])
        case "export": (launcher + 4, ["LAUNCH_MB=3"])
        default: (2 * launcher + 3, ["CACHE_MB=\(launcher + 2)"])
        }
    }

    /// The layouts and TMPDIR on a small tmpfs, filled after a first build so that `phase` runs
    /// out of space.
    @Test(.enabled(if: Fixture.shared.isRoot, "mounting a small tmpfs needs root"), arguments: fullDiskPhases)
    func aFullDiskStopsTheBuildWithOneLineAndLeavesNothingBehind(phase: String) throws {
        let launcher = Int((try FileManager.default.attributesOfItem(atPath: fx.launcher)[.size] as? NSNumber)?.intValue ?? 0) >> 20 + 1
        let disk = Self.fullDisk(phase, launcher: launcher)
        let base = fx.makeDirectory("crash-disk", mode: 0o777)
        let size = "size=\(4 * launcher + 16)m,mode=0777"
        try #require(Fixture.run(["mount", "-t", "tmpfs", "-o", size, "tmpfs", base]).status == 0)
        defer { _ = Fixture.run(["umount", "-l", base]) }
        let scene = Scene(in: base)
        let first = try scene.build(round: "a", as: .suiteUser)
        try #require(first.status == 0, "\(first)")
        let before = Before(scene)

        var fs = statvfs()
        try #require(statvfs(base, &fs) == 0)
        let free = Int(fs.f_bavail) * Int(fs.f_frsize)
        let filler = free - disk.free << 20
        try #require(filler > 0)
        try #require(Fixture.run(["fallocate", "-l", String(filler), base + "/filler"]).status == 0)

        // A disk budget larger than the disk: the default (half the free space) would stop the
        // build before the disk fills, and the guarantees must hold when the disk fills first.
        let full = try scene.build(round: "b", env: disk.env, options: ["--disk", "1G"], as: .suiteUser)
        #expect(full.status != 0, "\(full)")
        // One line; detection's error goes on with the groups it tried, indented.
        let lines = full.stderr.split(separator: "\n")
        #expect(lines.first?.hasPrefix("stockade: error: ") == true, "\(full)")
        #expect(lines.count == 1 || phase == "detect" && lines.dropFirst().allSatisfy { $0.hasPrefix(" ") }, "\(full)")
        #expect(!full.stderr.contains("warning"), "\(full)")
        let said: [String: String] = ["detect": "no buildpack group passed detection", "build": "test/crash@0.0.1: bin/build exited",
                                      "export": "export: write a blob", "cache save": "cannot save the cache: write a blob"]
        #expect(full.stderr.contains(said[phase]!), "\(full)")
        // The disk filled in that phase: in the buildpack's own output, or in stockade's line.
        #expect((full.stdout + full.stderr).contains("No space left on device"), "\(full)")
        // The export is done before the cache is saved.
        checkAftermath(scene, before: before, run: full, output: phase == "cache save" ? .complete : .asBefore,
                       cache: .asBefore)
    }
}

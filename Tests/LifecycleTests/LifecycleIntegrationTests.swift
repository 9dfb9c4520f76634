import Foundation
import StockadeTestSupport
import Testing

/// `stockade detect` and `stockade build` on real buildpacks in real sandboxes.
@Suite struct LifecycleIntegrationTests {
    let fx = Fixture.shared
    var examples: String { fx.examples }

    /// A new layers path (not yet created) that `invoker` can create.
    func layersPath() -> String { fx.makeDirectory("work", mode: 0o777) + "/layers" }

    func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    @Test(arguments: Invoker.all)
    func buildsThePythonExampleFromTheBuilder(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let layers = layersPath()
        let report = fx.makeDirectory("report", mode: 0o777) + "/report.json"
        let r = fx.stockade(["build", "--builder", examples + "/builder.toml", "--path", examples + "/apps/python-app",
                             "--layers", layers, "--report", report], as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("===> DETECTING") && r.stdout.contains("===> BUILDING"))
        #expect(r.stdout.contains("[examples/python] python: virtual environment with python 3."), "\(r)")
        #expect(r.stdout.contains("web (default): python app.py"))

        let group = read(layers + "/group.toml")
        #expect(group.contains("id = \"examples/python\"") && !group.contains("labeller") && !group.contains("optional"), "\(group)")
        let plan = read(layers + "/plan.toml")
        #expect(plan.contains("name = \"python\"") && plan.contains("id = \"examples/python\"") && plan.contains("launch = true"), "\(plan)")
        let metadata = read(layers + "/config/metadata.toml")
        #expect(metadata.contains("buildpack-default-process-type = \"web\""), "\(metadata)")
        #expect(metadata.contains("command = [\"python\", \"app.py\"]") && metadata.contains("type = \"version\""))
        #expect(metadata.contains("key = \"io.stockade.examples.python\""))
        #expect(FileManager.default.isExecutableFile(atPath: layers + "/examples_python/venv/bin/python"))
        #expect(read(layers + "/examples_python/venv.toml").contains("launch = true"))

        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any]
        let phases = json?["phases"] as? [[String: Any]] ?? []
        #expect(phases.map { $0["phase"] as? String } == ["detect", "build"])
        let built = (phases.last?["buildpacks"] as? [[String: Any]])?.first
        #expect(built?["id"] as? String == "examples/python" && built?["outcome"] as? String == "pass")
        #expect((built?["cpuSeconds"] as? Double ?? -1) >= 0 && (built?["maxResidentKiB"] as? Int ?? 0) > 0)
    }

    @Test(arguments: Invoker.all)
    func aCompositeWithAnOptionalBuildpackAndLabels(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let layers = layersPath()
        let r = fx.stockade(["build", "--builder", examples + "/builder.toml", "--path", examples + "/apps/shell-app",
                             "--layers", layers], as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("skip  examples/labeller@0.0.1") || r.stdout.contains("pass  examples/labeller@0.0.1"))
        let group = read(layers + "/group.toml")
        #expect(group.contains("examples/shell") && group.contains("examples/labeller") && !group.contains("examples/app-meta"), "\(group)")
        let metadata = read(layers + "/config/metadata.toml")
        #expect(metadata.contains("key = \"io.stockade.example\"") && metadata.contains("command = [\"/workspace/app.sh\"]"), "\(metadata)")
        #expect(read(layers + "/examples_shell/checksum.toml").contains("launch = true"))
    }

    @Test(arguments: Invoker.all)
    func aProviderMeetsWhatItsConsumerRequires(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let layers = layersPath()
        let r = fx.stockade(["build", "--buildpack", examples + "/buildpacks/greeting-provider",
                             "--buildpack", examples + "/buildpacks/greeting-consumer",
                             "--path", examples + "/apps/shell-app", "--layers", layers, "--network", "none"], as: invoker)
        #expect(r.status == 0, "\(r)")
        // The consumer's metadata reached the provider's plan, and the
        // provider's build layer reached the consumer's PATH.
        #expect(read(layers + "/examples_greeting-consumer/said.txt") == "hello from the provider\n", "\(r)")
        #expect(read(layers + "/plan.toml").contains("words = \"hello from the provider\""))
    }

    /// The run's directory in $TMPDIR (the workspace copy, the platform) goes when the layers go
    /// to --layers, whether the build passes or fails; --keep-layers alone keeps it, layers in it.
    @Test(arguments: Invoker.all)
    func onlyTheLayersAskedForStay(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        func build(_ options: [String], app: String, tmp: String) -> Outcome {
            Fixture.run(invoker.prefix + ["env", "TMPDIR=" + tmp, fx.stockade, "build", "--path", app] + options)
        }
        func left(_ tmp: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []).sorted() }
        let app = examples + "/apps/shell-app"

        let tmp = fx.makeDirectory("tmp", mode: 0o777)
        let layers = layersPath()
        let builder = ["--builder", examples + "/builder.toml"]
        let passed = build(builder + ["--layers", layers], app: app, tmp: tmp)
        #expect(passed.status == 0, "\(passed)")
        #expect(FileManager.default.fileExists(atPath: layers + "/config/metadata.toml"))
        #expect(left(tmp).isEmpty, "left in TMPDIR: \(left(tmp))")

        let failed = build(["--buildpack", examples + "/buildpacks/python", "--layers", layersPath()],
                           app: fx.makeDirectory("empty-app"), tmp: tmp)
        #expect(failed.status == 20, "\(failed)")
        #expect(left(tmp).isEmpty, "left in TMPDIR after a failed build: \(left(tmp))")

        // Refused before any buildpack runs: an order file that does not parse.
        let order = fx.makeDirectory("order") + "/order.toml"
        try "[[order]]\nnot toml ===\n".write(toFile: order, atomically: true, encoding: .utf8)
        chmod(order, 0o644)
        let refused = build(["--order", order, "--buildpacks-dir", examples + "/buildpacks", "--layers", layersPath()],
                            app: app, tmp: tmp)
        #expect(refused.status != 0 && refused.stderr.contains("order.toml"), "\(refused)")
        #expect(left(tmp).isEmpty, "left in TMPDIR after a refused order: \(left(tmp))")

        let keeping = fx.makeDirectory("tmp", mode: 0o777)
        let kept = build(builder + ["--keep-layers"], app: app, tmp: keeping)
        #expect(kept.status == 0, "\(kept)")
        let runs = left(keeping)
        #expect(runs.count == 1 && runs.first?.hasPrefix("stockade-") == true, "\(runs)")
        #expect(FileManager.default.fileExists(atPath: keeping + "/" + (runs.first ?? "") + "/layers/config/metadata.toml"))
    }

    @Test func detectOnlyWritesGroupAndPlan() {
        let layers = layersPath()
        let r = fx.stockade(["detect", "--builder", examples + "/builder.toml", "--path", examples + "/apps/shell-app",
                             "--layers", layers], as: .suiteUser)
        #expect(r.status == 0, "\(r)")
        #expect(read(layers + "/group.toml").contains("examples/shell"))
        #expect(FileManager.default.fileExists(atPath: layers + "/plan.toml"))
        #expect(!FileManager.default.fileExists(atPath: layers + "/config/metadata.toml"))
    }

    @Test func whenNoGroupPassesTheReasonIsShown() {
        let empty = fx.makeDirectory("empty-app")
        let r = fx.stockade(["detect", "--buildpack", examples + "/buildpacks/python", "--path", empty], as: .suiteUser)
        #expect(r.status == 20, "\(r)")
        #expect(r.stderr.contains("no buildpack group passed detection"))
        #expect(r.stderr.contains("fail: examples/python@0.1.0"))
        // The consumer requires a greeting the provider's group offers; alone it cannot resolve.
        let alone = fx.stockade(["detect", "--buildpack", examples + "/buildpacks/greeting-consumer", "--path", empty],
                                as: .suiteUser)
        #expect(alone.status == 20, "\(alone)")
        #expect(alone.stderr.contains("greeting"), "\(alone)")
    }
}

/// `--audit` on a lifecycle run: every event names its phase and buildpack.
@Suite struct LifecycleAuditTests {
    let fx = Fixture.shared

    @Test(arguments: Invoker.all)
    func everyBuildpackProcessIsAudited(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        let dir = fx.makeDirectory("audit", mode: 0o777)
        let log = dir + "/events.jsonl", report = dir + "/report.json"
        let examples = fx.examples
        let r = fx.stockade(["build", "--builder", examples + "/builder.toml", "--path", examples + "/apps/python-app",
                             "--audit", log, "--report", report], as: invoker)
        #expect(r.status == 0, "\(r)")
        let events = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let detects = events.filter { $0["phase"] as? String == "detect" }
        let builds = events.filter { $0["phase"] as? String == "build" }
        #expect(Set(detects.compactMap { $0["buildpack"] as? String }) == ["examples/python@0.1.0", "examples/labeller@0.0.1"])
        #expect(builds.allSatisfy { $0["buildpack"] as? String == "examples/python@0.1.0" } && !builds.isEmpty)
        // The venv creation is seen: python3 executed, files opened for writing in the layer.
        #expect(builds.contains { $0["syscall"] as? String == "execve" && (($0["args"] as? [String: Any])?["path"] as? String)?.hasSuffix("python3") == true })
        #expect(builds.contains { (($0["args"] as? [String: Any])?["path"] as? String)?.hasPrefix("/layers/examples_python/venv") == true })
        #expect(r.stdout.contains("audit build examples/python@0.1.0: "), "\(r.stdout)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any]
        let build = ((json?["phases"] as? [[String: Any]])?.last?["buildpacks"] as? [[String: Any]])?.first
        #expect((build?["audit"] as? [String: Any])?["programs"] is [String])
    }

    /// A build whose buildpacks make far more events than a tiny log holds: the log stays
    /// within its cap and ends with the count of what it left out, which the summary and
    /// --report give per buildpack; the build itself is untouched.
    @Test(arguments: Invoker.all)
    func aCappedLogCountsWhatItDrops(_ invoker: Invoker) throws {
        let dir = fx.makeDirectory("audit", mode: 0o777)
        let log = dir + "/events.jsonl", report = dir + "/report.json"
        let examples = fx.examples
        let r = fx.stockade(["build", "--builder", examples + "/builder.toml", "--path", examples + "/apps/python-app",
                             "--audit", log, "--audit-max-bytes", "2K", "--report", report], as: invoker)
        #expect(r.status == 0, "\(r)")
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.utf8.count <= 2048, "\(text.utf8.count) bytes")
        let last = text.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(last?["type"] as? String == "dropped" && last?["maxBytes"] as? Int == 2048, "\(text)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any]
        let runs = (json?["phases"] as? [[String: Any]] ?? []).flatMap { $0["buildpacks"] as? [[String: Any]] ?? [] }
        let dropped = runs.map { ($0["audit"] as? [String: Any])?["dropped"] as? Int ?? 0 }.reduce(0, +)
        #expect(dropped > 0 && dropped == last?["dropped"] as? Int, "\(runs)")
        #expect(r.stdout.contains("not written (the log's size or rate cap)"), "\(r.stdout)")
    }
}

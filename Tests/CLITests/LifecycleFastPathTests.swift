@testable import StockadeCLI
import StockadeTestSupport
import Testing

/// `LifecycleFastPath` against ArgumentParser over the same `detect` and `build` lines:
/// wherever the fast path answers, ArgumentParser must have parsed the very same
/// request, defaults included; wherever ArgumentParser refuses, the fast path must
/// have left it to ArgumentParser.
@Suite("detect's and build's fast argument path")
struct LifecycleFastPathTests {
    static func viaArgumentParser(_ arguments: [String]) -> String {
        do {
            let command = try Stockade.parseAsRoot(arguments)
            if let detect = command as? Detect { return String(reflecting: LifecycleCommand.detect(detect.options.request)) }
            if let build = command as? Build { return String(reflecting: LifecycleCommand.build(build.request)) }
            return "another command: \(type(of: command))"
        } catch {
            return "refused: \(error)"
        }
    }

    static func agrees(_ arguments: [String]) -> (fast: String, parser: String)? {
        guard let command = LifecycleFastPath.parse(arguments[...]) else { return nil }
        return (String(reflecting: command), viaArgumentParser(arguments))
    }

    @Test(arguments: [
        ["detect"],
        ["build"],
        ["build", "--path", "app", "--network", "none"],
        ["detect", "--buildpacks-dir", "/b", "--order", "/o.toml", "--path=/app", "--jobs", "3"],
        ["build", "--buildpack", "/a", "--buildpack=/b", "--env", "A=B", "--env=C=D=E", "--keep-layers"],
        ["detect", "--builder", "/b/builder.toml", "--order", "/o.toml"],
        ["build", "--builder", "localhost:5000/builder:1", "--store", "/s", "--output", "oci:/tmp/out:latest",
         "--cache-dir", "/c", "--previous-image", "oci:/tmp/prev", "--run-image", "oci:/tmp/run"],
        ["build", "--output", "localhost:5000/app:1", "--cache-image", "localhost:5000/cache",
         "--insecure-registry", "localhost:5000", "--insecure-registry=example.com"],
        ["detect", "--platform", "/p", "--layers", "/l", "--report", "/r.json", "--audit", "/a.jsonl",
         "--audit-max-bytes", "2K", "--audit-max-rate", "5", "--timeout", "2.5", "--user", "0:0"],
        ["build", "--rootfs", "/r", "--detect-profile", "strict", "--build-profile=/p.json", "--memory", "512M",
         "--pids", "10", "--cpus", "0.5", "--disk", "1G", "--require-namespaces", "--env-file", "/e"],
        ["build", "--path=-x", "--env=A=-"],
    ])
    func commonLinesTakeTheFastPathAndParseAsArgumentParserDoes(_ arguments: [String]) throws {
        let result = try #require(Self.agrees(arguments), "the fast path declined \(arguments)")
        #expect(result.fast == result.parser, "\(arguments)")
    }

    @Test(arguments: [
        ["detect", "--help"], ["build", "-h"], ["build", "app"], ["build", "--", "x"], ["build", "--"],
        ["detect", "--network", "none"], ["detect", "--output", "oci:/o"], ["build", "--bogus", "x"],
        ["build", "--path"], ["build", "--path", "--network", "none"], ["build", "--path="],
        ["build", "--path", "/a", "--path", "/b"], ["build", "--keep-layers", "--keep-layers"],
        ["build", "--keep-layers=true"], ["build", "--jobs", "0"], ["build", "--jobs", "x"],
        ["build", "--timeout", "0"], ["build", "--user", "root"], ["build", "--network", "bridge"],
        ["build", "--env", "NOEQUALS"], ["build", "--memory", "0"], ["build", "--disk", "0"],
        ["build", "--order", "/o.toml"], ["build", "--platform", "/p", "--env", "A=B"],
        ["build", "--run-image", "oci:/r"], ["build", "--cache-image", "oci:/c"],
        ["build", "--cache-image", "localhost:5000/c", "--cache-dir", "/c"], ["build", "--builder", "oci:/nonexistent"],
        ["build", "--insecure-registry", "a b"], ["build", "--builder", "oci:/b", "--rootfs", "/r"],
        ["build", "--audit-max-rate", "0"], ["build", "--pids", "-1"], ["build", "-path", "/"],
        ["--version"], ["help", "build"], ["exec", "--", "x"], ["build", "--Path", "/"], ["build", "--=x"],
    ])
    func anythingElseIsLeftToArgumentParser(_ arguments: [String]) {
        #expect(LifecycleFastPath.parse(arguments[...]) == nil, "\(arguments): \(Self.viaArgumentParser(arguments))")
    }

    /// 600 generated lines, valid and not, for both commands.
    @Test func generatedLinesNeverDisagree() {
        let names = ["path", "buildpack", "buildpacks-dir", "order", "builder", "store", "env", "env-file", "platform",
                     "layers", "keep-layers", "report", "audit", "audit-max-bytes", "audit-max-rate", "jobs", "timeout",
                     "user", "rootfs", "detect-profile", "build-profile", "memory", "pids", "cpus", "disk",
                     "require-namespaces", "network", "output", "run-image", "previous-image", "cache-dir", "cache-image",
                     "insecure-registry", "bogus", "help", "version", "Path", ""]
        let values = ["/", "/tmp", "", "-x", "--", "-", "a=b", "=b", "A=", "1000:1000", "0:0", "x:y", ":", "none",
                      "host", "bogus", "5", "0", "-1", "1.5", "inf", "nan", "1e3", "0x10", "+5", " 5", "512M", "0M",
                      "1K", "10G", "18446744073709551616", "strict", "oci:/tmp/img", "oci:/tmp/img:tag", "oci:",
                      "localhost:5000/app", "localhost:5000", "/b/builder.toml", "Registry.Example/App", "a b", "é", "--help", "-h"]
        let tails: [[String]] = [[], [], [], ["app"], ["--"], ["--", "x"], ["-x"], ["--help"]]
        var random = SplitMix64(seed: 0xdec7_b1d5)
        var fast = 0, disagreements: [String] = []
        for _ in 0..<600 {
            var arguments = [Bool.random(using: &random) ? "build" : "detect"]
            for _ in 0..<Int.random(in: 0...4, using: &random) {
                let name = "--" + names.randomElement(using: &random)!
                let value = values.randomElement(using: &random)!
                switch Int.random(in: 0..<4, using: &random) {
                case 0: arguments.append(name)
                case 1: arguments.append(name + "=" + value)
                default: arguments += [name, value]
                }
            }
            arguments += tails.randomElement(using: &random)!
            guard let result = Self.agrees(arguments) else { continue }
            fast += 1
            if result.fast != result.parser { disagreements.append("\(arguments): \(result.fast) / \(result.parser)") }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count): \(disagreements.prefix(5))")
        #expect(fast > 60, "only \(fast) lines took the fast path")
    }
}

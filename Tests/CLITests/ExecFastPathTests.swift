@testable import StockadeCLI
import StockadeTestSupport
import Testing

/// `ExecFastPath` against ArgumentParser over the same command lines: wherever the fast
/// path answers, ArgumentParser must have parsed the very same request (every value,
/// defaults included); wherever ArgumentParser refuses, the fast path must have left it
/// to ArgumentParser.
@Suite("exec's fast argument path")
struct ExecFastPathTests {
    /// ArgumentParser's request, or why there is none.
    static func viaArgumentParser(_ arguments: [String]) -> String {
        do {
            let command = try Stockade.parseAsRoot(arguments)
            guard let exec = command as? Exec else { return "another command: \(type(of: command))" }
            return String(reflecting: exec.request)
        } catch {
            return "refused: \(error)"
        }
    }

    /// Nil when the fast path declined; else both parsers' results.
    static func agrees(_ arguments: [String]) -> (fast: String, parser: String)? {
        guard let request = ExecFastPath.parse(arguments[...]) else { return nil }
        return (String(reflecting: request), viaArgumentParser(arguments))
    }

    @Test(arguments: [
        ["exec", "--", "/bin/true"],
        ["exec", "/bin/true"],
        ["exec", "/bin/sh", "-c", "exit 3", "--chdir", "/"],
        ["exec", "--", "--", "x"],
        ["exec", "--", "/bin/sh", "--help"],
        ["exec", "--chdir", "/tmp", "--env", "A=B", "--env=C=D=E", "--clear-env", "--", "sh", "-c", "x"],
        ["exec", "--memory", "512M", "--pids", "10", "--cpus", "0.5", "--timeout", "2.5", "--", "x"],
        ["exec", "--network=host", "--profile", "strict", "--hostname", "h", "--user", "0:0", "--", "x"],
        ["exec", "--audit", "/tmp/a", "--audit-max-bytes", "2K", "--audit-max-rate", "5", "--", "x"],
        ["exec", "--bind", "/a:/b", "--bind=/c:/d", "--ro-bind", "/e:/f", "--tmpfs", "/t", "--tmpfs", "/u", "--", "x"],
        ["exec", "--rootfs", "/r", "--require-namespaces", "--profile=/p.json", "--", "x"],
        ["exec", "--max-processes", "5", "--max-file-size", "1M", "--max-open-files", "64", "--cpu-seconds", "9",
         "--max-memory", "1G", "--", "x"],
        ["exec", "--chdir=-x", "--env=A=-", "--", "x"],
    ])
    func commonLinesTakeTheFastPathAndParseAsArgumentParserDoes(_ arguments: [String]) throws {
        let result = try #require(Self.agrees(arguments), "the fast path declined \(arguments)")
        #expect(result.fast == result.parser, "\(arguments)")
    }

    @Test(arguments: [
        ["exec"], ["exec", "--"], ["exec", "--chdir", "/"], ["exec", "--help", "--", "x"], ["exec", "-h"],
        ["exec", "--bogus", "--", "x"], ["exec", "--chdir", "--", "x"], ["exec", "--chdir", "-x", "--", "x"],
        ["exec", "--chdir=", "--", "x"], ["exec", "--chdir", "/a", "--chdir", "/b", "--", "x"],
        ["exec", "--clear-env", "--clear-env", "--", "x"], ["exec", "--clear-env=true", "--", "x"],
        ["exec", "--pids", "0", "--", "x"], ["exec", "--pids", "x", "--", "x"], ["exec", "--timeout", "0", "--", "x"],
        ["exec", "--user", "root", "--", "x"], ["exec", "--network", "bridge", "--", "x"],
        ["exec", "--env", "NOEQUALS", "--", "x"], ["exec", "--bind", "nocolon", "--", "x"],
        ["exec", "--memory", "0", "--", "x"], ["exec", "--audit-max-bytes", "1", "--", "x"],
        ["exec", "--audit-max-rate", "0", "--", "x"], ["exec", "--max-memory", "12Q", "--", "x"],
        ["--version"], ["help", "exec"], ["detect"], ["exec", "-chdir", "/", "--", "x"],
        ["exec", "--=x", "--", "x"], ["exec", "---chdir", "/", "--", "x"], ["exec", "--Chdir", "/", "--", "x"],
    ])
    func anythingElseIsLeftToArgumentParser(_ arguments: [String]) {
        #expect(ExecFastPath.parse(arguments[...]) == nil, "\(arguments): \(Self.viaArgumentParser(arguments))")
    }

    /// 500 generated lines, valid and not: options in both spellings with good,
    /// bad and odd values, unknown and repeated options, every way a command can start.
    @Test func generatedLinesNeverDisagree() {
        let names = ["rootfs", "bind", "ro-bind", "tmpfs", "chdir", "user", "network", "hostname", "env",
                     "clear-env", "profile", "audit", "timeout", "memory", "pids", "cpus", "require-namespaces",
                     "max-processes", "max-file-size", "max-open-files", "cpu-seconds", "max-memory",
                     "audit-max-bytes", "audit-max-rate", "bogus", "help", "version", "Rootfs", ""]
        let values = ["/", "/tmp", "", "-x", "--", "-", "a=b", "=b", "A=", "1000:1000", "0:0", "1000", "x:y", ":",
                      "none", "host", "bogus", "5", "0", "-1", "1.5", "inf", "nan", "1e3", "0x10", "+5", " 5",
                      "512M", "512m", "0M", "1K", "1023", "10G", "18446744073709551615", "18446744073709551616",
                      "default", "strict", "unconfined", "src:dst", ":dst", "src:", "a:b:c", " ", "é", "--help", "-h"]
        let commands: [[String]] = [["--", "/bin/true"], ["/bin/true", "-c"], ["--"], [], ["--", "--", "x"],
                                    ["--", "--help"], ["/bin/sh", "--help"], ["-x"], ["--help"], ["x", "--chdir", "/"],
                                    ["-"], ["--", ""], [""]]
        var random = SplitMix64(seed: 0x5709_cade)
        var fast = 0, disagreements: [String] = []
        for _ in 0..<500 {
            var arguments = ["exec"]
            for _ in 0..<Int.random(in: 0...4, using: &random) {
                let name = "--" + names.randomElement(using: &random)!
                let value = values.randomElement(using: &random)!
                switch Int.random(in: 0..<4, using: &random) {
                case 0: arguments.append(name)
                case 1: arguments.append(name + "=" + value)
                default: arguments += [name, value]
                }
            }
            arguments += commands.randomElement(using: &random)!
            guard let result = Self.agrees(arguments) else { continue }
            fast += 1
            if result.fast != result.parser { disagreements.append("\(arguments): \(result.fast) / \(result.parser)") }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count): \(disagreements.prefix(5))")
        // Not a vacuous test: a good share of the lines did take the fast path.
        #expect(fast > 50, "only \(fast) lines took the fast path")
    }
}

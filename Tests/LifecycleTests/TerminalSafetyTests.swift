import Foundation
import StockadeTestSupport
import Testing

/// What a buildpack prints reaches the user's terminal as text and colour
/// only: a real `stockade build` of a buildpack printing the escape grammar.
@Suite struct TerminalSafetyTests {
    let fx = Fixture.shared

    @Test(.timeLimit(.minutes(5)))
    func buildOutputPassesColourAndNothingElseOfTheEscapeGrammar() throws {
        let noisy = try fx.scriptBuildpack(id: "test/noisy", detect: "exit 0", build: #"""
            printf 'plain \033]52;c;cHduZWQ=\007osc52\n'
            printf 'title \033]0;owned\033\\t\n'
            printf 'dcs \033P1$r0m\033\\d apc \033_Ga=T\033\\a pm \033^p\033\\p sos \033Xs\033\\s\n'
            printf 'csi \033[2J\033[H\033[1A\033[2K\033[?25l\033[>4;2m\033[6nc\n'
            printf 'esc \033c\0337\033(0\033#8e\n'
            printf 'c1 \302\233\302\235\302\205|\233\235\n'
            printf 'ctl \007\010\016\000\177\r overwrite\n'
            printf 'crlf\r\n'
            printf '\033[31mred\033[0m \033[1;38;2;0;255;0mgreen\n'
            printf 'bad \377\376\300\200 utf8\n'
            head -c 200000 /dev/zero | tr '\0' a; echo
            printf 'unterminated \033]0;swallowed' >&2
            """#)
        let r = fx.stockade(["build", "--buildpack", noisy, "--path", fx.makeDirectory("app")], as: .suiteUser)
        #expect(r.status == 0, "\(r.status) \(r.stderr)")
        #expect(!r.stdout.isEmpty, "stdout is valid UTF-8")
        #expect(isTextAndColourOnly(r.stdout) && isTextAndColourOnly(r.stderr))
        let shown = r.lines.filter { $0.hasPrefix("[test/noisy] ") }.map { String($0.dropFirst("[test/noisy] ".count)) }
        let a = String(repeating: "a", count: 65536)
        let marker = " [stockade: line split at 65536 bytes]"
        #expect(shown == [
            "plain osc52",
            "title t",
            "dcs d apc a pm p sos s",
            "csi c",
            "esc e",
            "c1 |\u{FFFD}\u{FFFD}",
            "ctl  overwrite",
            "crlf",
            "\u{1B}[31mred\u{1B}[0m \u{1B}[1;38;2;0;255;0mgreen\u{1B}[0m",
            "bad \u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD} utf8",
            a + marker, a + marker, a + marker, String(repeating: "a", count: 200_000 - 3 * 65536),
            "unterminated ",
        ], "\(shown.map { $0.prefix(100) })")
    }

    @Test(.timeLimit(.minutes(5)))
    func detectsLastLineIsShownAsPlainText() throws {
        let noisy = try fx.scriptBuildpack(id: "test/noisy-detect", detect: #"""
            printf 'why: \033]52;c;cHduZWQ=\007\033[31mred\033[0m\033[2J\r\n'; exit 3
            """#, build: "exit 0")
        let r = fx.stockade(["detect", "--buildpack", noisy, "--path", fx.makeDirectory("app")], as: .suiteUser)
        #expect(r.status != 0)
        #expect(r.stderr.contains("bin/detect exited with 3: why: red"), "\(r)")
        #expect(!r.stdout.contains("\u{1B}") && !r.stderr.contains("\u{1B}"), "\(r)")
    }

    /// Stockade's own lines quote names a buildpack chose: a layer file name, a process type.
    @Test(.timeLimit(.minutes(5)), arguments: [
        #"printf '[types]\nlaunch = 1\n' > "$CNB_LAYERS_DIR/$(printf 'named\033]0;owned\007\033[2J')".toml"#,
        #"printf '[[processes]]\ntype = "named\\u001b]52;c;eA==\\u0007"\ncommand = ["x"]\n' > "$CNB_LAYERS_DIR/launch.toml""#,
    ])
    func stockadesOwnMessagesQuoteNamesAsPlainText(_ script: String) throws {
        let hostile = try fx.scriptBuildpack(id: "test/named", detect: "exit 0", build: "set -e\n" + script)
        let r = fx.stockade(["build", "--buildpack", hostile, "--path", fx.makeDirectory("app")], as: .suiteUser)
        #expect(r.status == 51, "\(r)")
        #expect(r.stderr.contains("named"), "\(r)")
        #expect(!r.stdout.contains("\u{1B}") && !r.stderr.contains("\u{1B}") && !r.stderr.contains("\u{07}"), "\(r)")
    }
}

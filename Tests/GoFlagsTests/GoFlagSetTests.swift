import GoFlags
import Testing

/// The spellings Tekton's and kpack's pods pass to the phases, and Go's answers to malformed ones.
@Suite struct GoFlagSetTests {
    let flags = GoFlagSet(["layers": .string, "skip-layers": .bool, "tag": .list, "uid": .int, "cache-image": .string])

    @Test func everySpellingPlatformsUse() throws {
        let values = try flags.parse(["-layers=/layers", "--cache-image=", "-skip-layers=false", "-tag", "a:1",
                                      "-tag=b:2", "-uid", "1000", "app:latest", "-extra"])
        #expect(values.string("layers") == "/layers")
        #expect(values.string("cache-image") == "")
        #expect(values.isSet("cache-image"))
        #expect(values.bool("skip-layers") == false)
        #expect(values.list("tag") == ["a:1", "b:2"])
        #expect(values.int("uid") == 1000)
        #expect(values.positional == ["app:latest", "-extra"])  // flags end at the first positional argument
    }

    @Test func lastValueWinsAndBareBoolIsTrue() throws {
        let values = try flags.parse(["-layers", "/a", "-layers", "/b", "-skip-layers"])
        #expect(values.string("layers") == "/b")
        #expect(values.bool("skip-layers") == true)
        #expect(values.positional.isEmpty)
    }

    @Test func aStringFlagTakesTheNextArgumentEvenWithADash() throws {
        let values = try flags.parse(["-layers", "-skip-layers"])
        #expect(values.string("layers") == "-skip-layers")
        #expect(values.bool("skip-layers") == nil)
    }

    @Test func doubleDashEndsTheFlags() throws {
        let values = try flags.parse(["-skip-layers", "--", "-layers=/x"])
        #expect(values.positional == ["-layers=/x"])
        #expect(values.string("layers") == nil)
        #expect(try flags.parse(["-", "x"]).positional == ["-", "x"])  // a lone dash is an argument
    }

    @Test(arguments: [
        (["-nope"], "flag provided but not defined: -nope"),
        (["--nope=1"], "flag provided but not defined: -nope"),
        (["-layers"], "flag needs an argument: -layers"),
        (["---layers=x"], "bad flag syntax: ---layers=x"),
        (["-=x"], "bad flag syntax: -=x"),
        (["-skip-layers=maybe"], "invalid boolean value \"maybe\" for -skip-layers: parse error"),
        (["-skip-layers="], "invalid boolean value \"\" for -skip-layers: parse error"),
        (["-uid=abc"], "invalid value \"abc\" for flag -uid: parse error"),
        (["-uid="], "invalid value \"\" for flag -uid: parse error"),
        (["-uid", "1\n2"], "invalid value \"1\\n2\" for flag -uid: parse error"),
    ])
    func malformedInputIsOneLine(arguments: [String], message: String) {
        #expect(throws: GoFlagSet.ParseError(message: message, isHelp: false)) { try flags.parse(arguments) }
        #expect(!message.contains("\n"))
    }

    @Test func helpIsNotAnError() {
        #expect(throws: GoFlagSet.ParseError(message: "flag: help requested", isHelp: true)) { try flags.parse(["-h"]) }
        #expect(throws: GoFlagSet.ParseError(message: "flag: help requested", isHelp: true)) { try flags.parse(["--help"]) }
    }

    @Test func integersAndBooleansAsGoSpellsThem() {
        #expect(GoFlagSet.parseInt("-5") == -5)
        #expect(GoFlagSet.parseInt("+7") == 7)
        #expect(GoFlagSet.parseInt("") == nil)
        #expect(GoFlagSet.parseInt("1e3") == nil)
        #expect(GoFlagSet.parseInt("99999999999999999999999") == nil)
        for yes in ["1", "t", "T", "TRUE", "true", "True"] { #expect(GoFlagSet.parseBool(yes) == true) }
        for no in ["0", "f", "F", "FALSE", "false", "False"] { #expect(GoFlagSet.parseBool(no) == false) }
        #expect(GoFlagSet.parseBool("yes") == nil)
    }
}

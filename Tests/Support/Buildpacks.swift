import Foundation

extension Fixture {
    /// A buildpack in a fresh directory, readable by every invoker, whose `bin/detect` and
    /// `bin/build` are the given shell scripts.
    public func scriptBuildpack(id: String, detect: String = "exit 0", build: String, api: String = "0.10") throws -> String {
        let dir = makeDirectory("bp-" + id.replacingOccurrences(of: "/", with: "-"))
        try FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        try "api = \"\(api)\"\n[buildpack]\nid = \"\(id)\"\nversion = \"0.0.1\"\n"
            .write(toFile: dir + "/buildpack.toml", atomically: true, encoding: .utf8)
        try ("#!/bin/sh\n" + detect + "\n").write(toFile: dir + "/bin/detect", atomically: true, encoding: .utf8)
        try ("#!/bin/sh\n" + build + "\n").write(toFile: dir + "/bin/build", atomically: true, encoding: .utf8)
        for path in [dir + "/bin", dir + "/bin/detect", dir + "/bin/build"] { chmod(path, 0o755) }
        chmod(dir + "/buildpack.toml", 0o644)
        return dir
    }
}

/// What may reach a terminal from a buildpack: text, tab, newline and SGR colour
/// (`ESC [` digits `;` `:` `m`), nothing else of the escape grammar.
public func isTextAndColourOnly(_ text: String) -> Bool {
    let scalars = Array(text.unicodeScalars)
    var index = 0
    while index < scalars.count {
        let value = scalars[index].value
        if value == 0x1B {
            guard index + 1 < scalars.count, scalars[index + 1] == "[" else { return false }
            index += 2
            while index < scalars.count, "0123456789;:".unicodeScalars.contains(scalars[index]) { index += 1 }
            guard index < scalars.count, scalars[index] == "m" else { return false }
        } else if (value < 0x20 && value != 0x09 && value != 0x0A) || (0x7F...0x9F).contains(value) {
            return false
        }
        index += 1
    }
    return true
}

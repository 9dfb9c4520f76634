import Foundation
@testable import Sandbox
import Testing

/// The exact bytes of the audit log's lines, which `profiles/audit-event.schema.json` describes and
/// users parse: the recorder writes them without building Strings, and must write these.
@Suite struct AuditLogFormatTests {
    func event(_ time: Int64, _ syscall: String, _ arguments: AuditArguments,
               _ outcome: AuditEvent.Outcome = .allowed, labels: [String: String] = [:]) -> AuditEvent {
        AuditEvent(time: time, sandbox: "ab12cd34", labels: labels, pid: 7, syscall: syscall, arguments: arguments,
                   outcome: outcome)
    }

    @Test func eachKindOfEventIsWrittenAsBefore() {
        let cases: [(AuditEvent, String)] = [
            (event(1_700_000_000_000_123, "openat", .open(path: "/w/out/f", flags: ["O_WRONLY", "O_CREAT"]),
                   labels: ["phase": "build", "buildpack": "a/b"]),
             #"{"time":"2023-11-14T22:13:20.000123Z","sandbox":"ab12cd34","buildpack":"a/b","phase":"build","pid":7,"#
                + #""syscall":"openat","args":{"path":"/w/out/f","flags":["O_WRONLY","O_CREAT"]},"outcome":"allowed"}"#),
            (event(0, "execve", .exec(path: "/bin/sh", argv: ["sh", "-c", "echo \"hi\"\n\u{1}\\ é"])),
             #"{"time":"1970-01-01T00:00:00.000000Z","sandbox":"ab12cd34","pid":7,"syscall":"execve","#
                + #""args":{"path":"/bin/sh","argv":["sh","-c","echo \"hi\"\n\u0001\\ é"]},"outcome":"allowed"}"#),
            (event(1_700_000_001_500_000, "connect", .address(family: "inet", address: "10.0.0.1", port: 443, path: nil),
                   .denied(errno: 1)),
             #"{"time":"2023-11-14T22:13:21.500000Z","sandbox":"ab12cd34","pid":7,"syscall":"connect","#
                + #""args":{"family":"inet","address":"10.0.0.1","port":443},"outcome":"denied","errno":1,"errnoName":"EPERM"}"#),
            (event(1_700_000_001_999_999, "connect", .address(family: "unix", address: nil, port: nil, path: "@x\"y")),
             #"{"time":"2023-11-14T22:13:21.999999Z","sandbox":"ab12cd34","pid":7,"syscall":"connect","#
                + #""args":{"family":"unix","path":"@x\"y"},"outcome":"allowed"}"#),
            (event(1_700_000_001_000_000, "socket", .socket(family: "inet6", type: 2)),
             #"{"time":"2023-11-14T22:13:21.000000Z","sandbox":"ab12cd34","pid":7,"syscall":"socket","#
                + #""args":{"family":"inet6","type":2},"outcome":"allowed"}"#),
            (event(1_700_086_400_000_001, "mount", .values([0, 18_446_744_073_709_551_615]), .denied(errno: 38)),
             #"{"time":"2023-11-15T22:13:20.000001Z","sandbox":"ab12cd34","pid":7,"syscall":"mount","#
                + #""args":{"values":[0,18446744073709551615]},"outcome":"denied","errno":38,"errnoName":"ENOSYS"}"#),
        ]
        for (event, line) in cases { #expect(AuditLog.json(event) == line) }

        // The same events through a log, one after the other (the time and label caches carry over).
        let path = NSTemporaryDirectory() + "audit-format-\(getpid()).jsonl"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer { unlink(path) }
        let log = AuditLog(fd: fd)
        for (event, _) in cases + cases { #expect(log.record(event) == .kept) }
        #expect(log.finish())
        close(fd)
        let written = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        #expect(written == (cases + cases).map { $0.1 + "\n" }.joined())
    }
}

import Foundation
import StockadeTestSupport
import Testing

/// What a hostile command tries beyond escaping: reading the supervisor through the
/// sandbox's pid 1, core dumps, out-of-band socket data, the host's TLS keys.
@Suite struct HardeningTests {
    let fx = Fixture.shared

    static let argumentMarker = "argv-marker-5f3a"
    static let environmentMarker = "env-marker-9c1e"

    /// `stockade exec` with a marker in its own environment (which `--clear-env` keeps from the
    /// command) and, through `--env`, its argv.
    func execWithMarkers(_ command: [String], as invoker: Invoker) -> Outcome {
        Fixture.run(["STOCKADE_SUPERVISOR_SECRET=\(Self.environmentMarker)"] + invoker.prefix + [
            fx.stockade, "exec", "--ro-bind", "\(fx.probe):/probe", "--clear-env", "--env", "PASSED=\(Self.argumentMarker)", "--",
        ] + command)
    }

    @Test(arguments: Invoker.all)
    func pidOneShowsNothingOfTheSupervisor(_ invoker: Invoker) {
        let guarded = ["environ", "maps", "smaps", "mem", "auxv", "stack", "syscall", "pagemap", "exe", "cwd/."]
        let r = execWithMarkers(["/probe", "cat:/proc/1/cmdline"] + guarded.map { "cat:/proc/1/\($0)" }
                                + ["cat:/proc/self/environ"], as: invoker)
        #expect(r.status == 0, "\(r)")
        // The command's own environment holds what --env passed: reading works, and the marker is there to find.
        #expect(r.stdout.contains("PASSED=\(Self.argumentMarker)") && r.stdout.hasSuffix("cat:/proc/self/environ: ok\n"), "\(r)")
        let fromPidOne = r.stdout.replacingOccurrences(of: "PASSED=\(Self.argumentMarker)", with: "")
        #expect(!fromPidOne.contains(Self.argumentMarker) && !fromPidOne.contains(Self.environmentMarker), "\(r)")
        #expect(!fromPidOne.contains("--env") && !fromPidOne.contains(fx.stockade), "\(r)")
        // cmdline needs no ptrace access: it must be readable and empty.
        #expect(r.lines.first == "cat:/proc/1/cmdline: ok", "\(r)")
        for name in guarded {
            let answer = r.probes["cat:/proc/1/\(name)"]
            #expect(answer == "EACCES" || answer == "EPERM", "/proc/1/\(name): \(answer ?? "missing")")
        }
    }

    @Test(arguments: Invoker.all)
    func everyProcessListingShowsNoSupervisorArguments(_ invoker: Invoker) {
        let r = execWithMarkers(["/bin/sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '; echo; tr '\\0' ' ' < /proc/1/cmdline | wc -c"],
                                as: invoker)
        #expect(r.status == 0, "\(r)")
        #expect(r.lines.last == "0", "\(r)")
        #expect(r.stdout.contains("cat /proc/"), "the listing reads the sandbox's processes: \(r)")
        #expect(!r.stdout.contains(Self.argumentMarker) && !r.stdout.contains("--ro-bind"), "\(r)")
    }

    @Test(arguments: Invoker.all)
    func coreDumpsCannotBeTurnedOn(_ invoker: Invoker) {
        // Control: outside, the invoker may raise its soft limit up to a hard limit above 0.
        let host = Fixture.run(invoker.prefix + ["/bin/sh", "-c", "ulimit -Hc"])
        #expect(host.lines.first != "0", "the host's hard core limit is already 0: \(host)")
        let r = fx.exec([], ["/bin/sh", "-c", "ulimit -Hc; ulimit -c; ulimit -c unlimited && echo raised; ulimit -c 1 && echo raised"],
                        as: invoker)
        #expect(r.lines == ["0", "0"], "\(r)")
        #expect(!r.stdout.contains("raised"), "\(r)")
    }

    static let plainSocketProbes = ["send", "recv", "sendmsg", "recvmsg"]
    static let outOfBandProbes = ["send-oob", "recv-oob", "sendmsg-oob", "recvmsg-oob"]

    @Test(arguments: Invoker.all)
    func outOfBandDataIsRefusedByTheBuiltinProfiles(_ invoker: Invoker) {
        let every = Self.plainSocketProbes + Self.outOfBandProbes
        for profile in ["default", "strict"] {
            let mmsg = profile == "default" ? ["sendmmsg", "recvmmsg", "sendmmsg-oob", "recvmmsg-oob"] : []
            let r = fx.exec(["--profile", profile], ["/probe"] + every + mmsg, as: invoker)
            #expect(r.status == 0, "\(profile): \(r)")
            for name in Self.plainSocketProbes + mmsg where !name.hasSuffix("-oob") {
                #expect(r.probes[name] == "ok", "\(profile) \(name): \(r)")
            }
            for name in Self.outOfBandProbes + mmsg where name.hasSuffix("-oob") {
                #expect(r.probes[name] == "EOPNOTSUPP", "\(profile) \(name): \(r)")
            }
        }
        // Control: this kernel has AF_UNIX out-of-band data, and without a filter it works.
        let open = fx.exec(["--profile", "unconfined"], ["/probe"] + every + ["sendmmsg-oob", "recvmmsg-oob"], as: invoker)
        for name in every + ["sendmmsg-oob", "recvmmsg-oob"] { #expect(open.probes[name] == "ok", "unconfined \(name): \(open)") }
    }

    @Test(arguments: Invoker.all)
    func onlyThePublicPartsOfEtcSSLAreThere(_ invoker: Invoker) throws {
        // A key planted for the test (as root only), gone again afterwards.
        var planted: String?
        if fx.isRoot, FileManager.default.fileExists(atPath: "/etc/ssl/private") {
            let path = "/etc/ssl/private/stockade-test-\(UUID().uuidString.prefix(8)).key"
            try "not a key\n".write(toFile: path, atomically: false, encoding: .utf8)
            planted = path
        }
        defer { if let planted { try? FileManager.default.removeItem(atPath: planted) } }
        let bundle = "/etc/ssl/certs/ca-certificates.crt"
        let probes = ["read:/etc/ssl/private", "read:/etc/ssl/openssl.cnf"] + (planted.map { ["read:\($0)"] } ?? [])
            + (FileManager.default.fileExists(atPath: bundle) ? ["read:\(bundle)"] : [])
        let r = fx.exec([], ["/probe"] + probes, as: invoker)
        #expect(r.probes["read:/etc/ssl/private"] == "ENOENT", "\(r)")
        if let planted { #expect(r.probes["read:\(planted)"] == "ENOENT", "\(r)") }
        for name in probes where !name.contains("private") {
            if FileManager.default.fileExists(atPath: String(name.dropFirst(5))) { #expect(r.probes[name] == "ok", "\(name): \(r)") }
        }
        let listing = fx.exec([], ["/bin/ls", "-A", "/etc/ssl"], as: invoker)
        #expect(listing.status == 0 && !listing.lines.contains("private"), "\(listing)")
    }
}

import Foundation
import StockadeTestSupport
import Testing

/// Every buildpack's sandbox gets the command's limits, and a limit that stops one is named with it.
@Suite struct ResourceLimitBuildTests {
    let fx = Fixture.shared

    static let hog = "dd if=/dev/zero of=/dev/null bs=512M count=1"

    /// Root holds the build in a memory cgroup and names the limit (exit 53); the unprivileged
    /// invokers have RLIMIT_AS only: the allocation fails all the same, as an ordinary build failure (51).
    @Test(arguments: Invoker.all)
    func aBuildpackAllocatingTooMuchIsStoppedAndNamed(_ invoker: Invoker) throws {
        let hog = try fx.scriptBuildpack(id: "test/hog", build: Self.hog)
        let r = fx.stockade(["build", "--memory", "128M", "--buildpack", hog, "--path", fx.makeDirectory("app")], as: invoker)
        let errorLine = r.stderr.split(separator: "\n").first { $0.hasPrefix("stockade: error: ") }.map(String.init) ?? ""
        #expect(errorLine.contains("test/hog@0.0.1"), "\(r)")
        if invoker == .suiteUser && fx.isRoot {
            #expect(r.status == 53, "\(r)")
            #expect(errorLine.contains("memory limit 128 MiB reached"), "\(r)")
        } else {
            #expect(r.status == 51, "\(r)")
        }
        let control = fx.stockade(["build", "--memory", "2G", "--buildpack", hog, "--path", fx.makeDirectory("app")], as: invoker)
        #expect(control.status == 0, "\(control)")
    }

    @Test func aDetectStoppedByALimitNamesIt() throws {
        guard fx.isRoot else { return }
        let hog = try fx.scriptBuildpack(id: "test/hungry-detect", detect: Self.hog, build: "exit 0")
        let r = fx.stockade(["detect", "--memory", "128M", "--buildpack", hog, "--path", fx.makeDirectory("app")], as: .suiteUser)
        #expect(r.status == 21, "\(r)")
        #expect((r.stdout + r.stderr).contains("memory limit 128 MiB reached"), "\(r)")
        #expect(r.stderr.contains("test/hungry-detect"), "\(r)")
    }
}

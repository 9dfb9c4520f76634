import Sandbox

extension Stockade {
    /// `stockade detect|build` have each buildpack's sandbox cloned by a zygote, forked here:
    /// before this process has a second thread or has read anything worth copying. The
    /// phases fork theirs once they have become the stack user (PhaseSession.perform).
    public static func startZygote(for arguments: [String]) {
        let base = arguments.first?.split(separator: "/").last.map(String.init) ?? ""
        guard arguments.count > 1, arguments[1] == "detect" || arguments[1] == "build",
              base != "lifecycle", LifecyclePhase(rawValue: base) == nil else { return }
        Zygote.start()
    }
}

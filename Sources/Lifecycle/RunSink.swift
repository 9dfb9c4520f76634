import Synchronization

/// Where the phases record every buildpack process as it ends, for the summary and `--report`:
/// a phase that stops early has still recorded what ran before it stopped.
public protocol RunSink: Sendable {
    func record(_ run: BuildpackRun)
}

/// A sink that keeps the runs in the order they were recorded.
public final class RunLog: RunSink {
    private let recorded = Mutex<[BuildpackRun]>([])

    public init() {}

    public func record(_ run: BuildpackRun) { recorded.withLock { $0.append(run) } }

    public var runs: [BuildpackRun] { recorded.withLock { $0 } }
}

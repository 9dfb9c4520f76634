import JSON
/// What the phases did, per buildpack: for the terminal and for `--report`.
public struct RunReport: Sendable {
    public var runs: [BuildpackRun]
    public var exitCode: Int32
    public var error: String?

    public init(runs: [BuildpackRun], exitCode: Int32, error: String? = nil) {
        self.runs = runs
        self.exitCode = exitCode
        self.error = error
    }

    /// A table a person reads at the end of a run.
    public var summary: [String] {
        var lines = ["phase   outcome  exit  wall       cpu        max rss    buildpack"]
        for run in runs {
            let exit = run.exitCode.map(String.init) ?? "-"
            lines.append([run.phase.rawValue.padding(7), run.outcome.rawValue.padding(8), exit.padding(5),
                          Self.seconds(run.wallMicroseconds).padding(10), Self.seconds(run.cpuMicroseconds).padding(10),
                          "\(run.maxResidentKiB / 1024) MiB".padding(10), run.buildpack].joined(separator: " "))
        }
        for run in runs {
            guard let audit = run.audit else { continue }
            let total = audit.events.values.reduce(0, +)
            lines.append("audit \(run.phase.rawValue) \(run.buildpack): \(total) events"
                + (audit.programs.isEmpty ? "" : "; executed \(audit.programs.joined(separator: ", "))")
                + (audit.destinations.isEmpty ? "" : "; connected to \(audit.destinations.joined(separator: ", "))")
                + (audit.denials.isEmpty ? "" : "; denied " + audit.denials.sorted { $0.key < $1.key }
                    .map { "\($0.key) \($0.value)" }.joined(separator: ", "))
                + (audit.dropped == 0 ? "" : "; \(audit.dropped) not written (the log's size or rate cap)"))
        }
        return lines
    }

    /// The report as JSON: phases in order, each with its buildpacks.
    public var json: String {
        var phases: [(String, [BuildpackRun])] = []
        for run in runs {
            if let last = phases.indices.last, phases[last].0 == run.phase.rawValue {
                phases[last].1.append(run)
            } else {
                phases.append((run.phase.rawValue, [run]))
            }
        }
        var out = "{\n  \"exitCode\": \(exitCode),\n"
        if let error { out += "  \"error\": \(Self.quote(error)),\n" }
        out += "  \"phases\": ["
        for (p, (name, phaseRuns)) in phases.enumerated() {
            out += (p == 0 ? "\n" : ",\n") + "    {\n      \"phase\": \(Self.quote(name)),\n      \"buildpacks\": ["
            for (i, run) in phaseRuns.enumerated() {
                var fields = [
                    "\"id\": \(Self.quote(run.id))",
                    "\"version\": \(Self.quote(run.version))",
                    "\"outcome\": \(Self.quote(run.outcome.rawValue))",
                    "\"exitCode\": \(run.exitCode.map(String.init) ?? "null")",
                    "\"wallSeconds\": \(Self.decimal(run.wallMicroseconds))",
                    "\"cpuSeconds\": \(Self.decimal(run.cpuMicroseconds))",
                    "\"maxResidentKiB\": \(run.maxResidentKiB)",
                ]
                if let message = run.message { fields.append("\"message\": \(Self.quote(message))") }
                if let audit = run.audit { fields.append("\"audit\": " + Self.json(audit)) }
                out += (i == 0 ? "\n" : ",\n") + "        {" + fields.joined(separator: ", ") + "}"
            }
            out += "\n      ]\n    }"
        }
        out += phases.isEmpty ? "]\n}\n" : "\n  ]\n}\n"
        return out
    }

    static func json(_ audit: AuditCounts) -> String {
        func counts(_ values: [String: Int]) -> String {
            "{" + values.sorted { $0.key < $1.key }.map { "\(quote($0.key)): \($0.value)" }.joined(separator: ", ") + "}"
        }
        func list(_ values: [String]) -> String { "[" + values.map(quote).joined(separator: ", ") + "]" }
        return "{\"events\": \(counts(audit.events)), \"programs\": \(list(audit.programs)), "
            + "\"destinations\": \(list(audit.destinations)), \"denials\": \(counts(audit.denials)), "
            + "\"dropped\": \(audit.dropped)}"
    }

    static func seconds(_ microseconds: Int64) -> String { decimal(microseconds) + " s" }

    /// Seconds with three decimals, from microseconds, without Foundation.
    static func decimal(_ microseconds: Int64) -> String {
        let milliseconds = (microseconds + 500) / 1000
        let fraction = String(milliseconds % 1000)
        return "\(milliseconds / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    static func quote(_ text: String) -> String { JSONText.quote(text) }
}

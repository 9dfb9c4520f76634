/// How `bin/detect` (or the platform, on its behalf) ended for one element.
public enum DetectOutcome: Sendable, Equatable {
    /// Exit 0, with what it wrote to its plan path.
    case pass(DetectPlan)
    /// Exit 100.
    case fail
    /// Any other exit, a crash, an unreadable or invalid plan, a required element whose targets do not match
    /// the image: a buildpack error, with a one-line reason.
    case error(String)
    /// Not run and not counted (e.g. exec-env mismatch decided by the platform).
    case skipped
}

/// A group that passed detection: what goes into group.toml and plan.toml.
public struct DetectedGroup: Sendable, Equatable {
    /// group.toml: the surviving elements in order, without `optional`.
    public var group: GroupTOML
    /// plan.toml.
    public var plan: PlanTOML
    /// The 1-based number of the trial that resolved.
    public var trial: Int
    /// What happened, one line each (`pass: A@v1`, `skip: D@v1 requires dep9-missing`, ...).
    public var log: [String]
}

/// Why a group failed detection.
public struct DetectFailure: Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        /// Every element ran; the group did not pass (a required element failed, no buildpack passed, or no
        /// trial resolved).
        case failed
        /// A required element failed and some element (required or optional) errored.
        case buildpackError
    }

    public var reason: Reason
    /// One line each, for people: `fail: B@v1 requires dep1, which nothing before it provides`, ...
    public var log: [String]

    public var description: String { log.joined(separator: "\n") }

    /// The detector's exit code when no group passed (§3.4): 21 if some group failed with a buildpack error,
    /// else 20. (The reference lifecycle can lose an error from inside an optional composite and report 20;
    /// this follows the spec's wording.)
    public static func exitCode(for failures: [DetectFailure]) -> Int32 {
        failures.contains { $0.reason == .buildpackError } ? 21 : 20
    }
}

/// The result of resolving one candidate group.
public enum GroupDetection: Sendable, Equatable {
    case passed(DetectedGroup)
    case failed(DetectFailure)
}

/// Deciding whether a candidate group passes, and building its plan (§3.3).
///
/// A group passes when every required element passed, at least one **buildpack** passed, and some trial
/// resolves. A trial picks, for every passing element, its top-level plan or one of its `[[or]]` alternatives;
/// trials are enumerated depth-first with the first element varying slowest and, per element, the top-level
/// plan first, then `or[0]`, `or[1]`, ....
///
/// A trial is resolved in group order: each element adds its provides, then its requires; a require consumes
/// all pending provides of its name (they become the entry's providers). A require with no provider yet is
/// unmet; a provide nothing later consumes is unused. Either fails the trial for a required element; an optional
/// element is removed instead and the trial re-run until stable. An optional element counts as optional only in
/// its **last** alternative (in earlier ones it is required, so the next trial is tried instead). An empty result
/// fails. The first trial that resolves wins.
public enum GroupResolution {
    /// The most trials tried before giving up on a group (a hostile plan can have many `[[or]]` entries).
    public static let defaultTrialLimit = 65_536

    /// Resolves a candidate group from `OrderExpansion`.
    public static func resolve(_ candidate: CandidateGroup, outcomes: [ModuleKey: DetectOutcome],
                               trialLimit: Int = defaultTrialLimit) throws(SpecError) -> GroupDetection
    {
        try resolve(candidate.groupElements, outcomes: outcomes, trialLimit: trialLimit)
    }

    /// Resolves a candidate group.
    /// - Parameters:
    ///   - group: the candidate's elements, in order (`CandidateGroup.groupElements`).
    ///   - outcomes: each element's detect outcome, keyed by `GroupElement.key`.
    ///   - trialLimit: the most trials to try.
    /// - Throws: `.rule` if an element has no recorded outcome (a platform bug, not a detection failure).
    public static func resolve(_ group: [GroupElement], outcomes: [ModuleKey: DetectOutcome],
                               trialLimit: Int = defaultTrialLimit) throws(SpecError) -> GroupDetection
    {
        var log: [String] = []
        var passed: [(element: GroupElement, plan: DetectPlan)] = []
        var detected = true
        var anyBuildpack = false
        var buildpackError = false
        for element in group {
            guard let outcome = outcomes[element.key] else {
                throw SpecError(.rule, "no detect outcome was recorded for \(element.key)", buildpack: element.description)
            }
            switch outcome {
            case .skipped:
                continue
            case .pass(let plan):
                log.append("pass: \(element)")
                passed.append((element, plan))
                if element.kind == .buildpack { anyBuildpack = true }
            case .fail:
                log.append(element.optional ? "skip: \(element)" : "fail: \(element)")
                detected = detected && element.optional
            case .error(let reason):
                log.append("err:  \(element)\(reason.isEmpty ? "" : " (\(reason))")")
                buildpackError = true
                detected = detected && element.optional
            }
        }
        if !detected {
            return .failed(DetectFailure(reason: buildpackError ? .buildpackError : .failed, log: log))
        }
        if !anyBuildpack {
            log.append("fail: no viable buildpacks in group")
            return .failed(DetectFailure(reason: .failed, log: log))
        }

        // Options per passing element: its alternatives, optional only in the last one.
        let options: [[TrialOption]] = passed.enumerated().map { index, entry in
            let alternatives = entry.plan.alternatives
            return alternatives.enumerated().map { alternativeIndex, sections in
                var element = entry.element
                element.optional = element.optional && alternativeIndex == alternatives.count - 1
                return TrialOption(position: index, element: element, sections: sections)
            }
        }
        var choice = [Int](repeating: 0, count: options.count)
        var trialNumber = 0
        var lastLog: [String] = []
        while true {
            trialNumber += 1
            if trialNumber > trialLimit {
                log.append("no trial resolved; the last one (#\(trialLimit)):")
                log.append(contentsOf: lastLog)
                log.append("fail: gave up after \(trialLimit) trials")
                return .failed(DetectFailure(reason: .failed, log: log))
            }
            let trial = choice.enumerated().map { options[$0.offset][$0.element] }
            switch runTrial(trial) {
            case .resolved(let survivors, let plan, let trialLog):
                log.append("resolved on trial #\(trialNumber)")
                log.append(contentsOf: trialLog)
                let elements = survivors.map(\.element)
                let groupTOML = GroupTOML(group: elements.filter { $0.kind == .buildpack },
                                          groupExtensions: elements.filter { $0.kind == .extension })
                return .passed(DetectedGroup(group: groupTOML, plan: plan, trial: trialNumber, log: log))
            case .failed(let trialLog):
                lastLog = trialLog
            }
            // Next choice: the last element varies fastest.
            var position = choice.count - 1
            while position >= 0 {
                choice[position] += 1
                if choice[position] < options[position].count { break }
                choice[position] = 0
                position -= 1
            }
            if position < 0 { break }
        }
        if trialNumber > 1 { log.append("no trial resolved; the last one (#\(trialNumber)):") }
        log.append(contentsOf: lastLog)
        return .failed(DetectFailure(reason: .failed, log: log))
    }

    struct TrialOption {
        var position: Int
        var element: GroupElement
        var sections: DetectPlan.Sections
    }

    enum TrialResult {
        case resolved([TrialOption], PlanTOML, [String])
        case failed([String])
    }

    /// One trial, re-run after removing optional offenders until stable (REF `runTrial`).
    static func runTrial(_ initial: [TrialOption]) -> TrialResult {
        var trial = initial
        var log: [String] = []
        while true {
            let deps = DependencyMap(trial)
            var offenders: [(position: Int, message: String, required: Bool)] = []
            // Every early require, then every unused provide, each by name: the reference's order.
            let offences: [(KeyPath<DependencyMap.Entry, [Int]>, (String) -> String)] = [
                (\.earlyRequires, { "requires \($0), which nothing before it provides" }),
                (\.extraProvides, { "provides unused \($0), which nothing after it requires" }),
            ]
            for (indices, offence) in offences {
                for name in deps.names {
                    for index in deps.entries[name]![keyPath: indices] {
                        let option = trial[index]
                        offenders.append((option.position, "\(option.element) " + offence(name), !option.element.optional))
                    }
                }
            }
            if offenders.isEmpty {
                if trial.isEmpty {
                    return .failed(log + ["fail: no viable buildpacks in group"])
                }
                return .resolved(trial, deps.plan(trial), log)
            }
            let required = offenders.filter(\.required)
            if !required.isEmpty {
                return .failed(log + required.map { "fail: " + $0.message })
            }
            log.append(contentsOf: offenders.map { "skip: " + $0.message })
            let removed = Set(offenders.map(\.position))
            trial.removeAll { removed.contains($0.position) }
        }
    }

    /// The dependencies of a trial (REF `depMap`), with names in order of first appearance.
    struct DependencyMap {
        struct Entry {
            var providers: [Int] = []       // trial indices
            var requires: [Require] = []
            var earlyRequires: [Int] = []
            var extraProvides: [Int] = []
        }
        var names: [String] = []
        var entries: [String: Entry] = [:]

        init(_ trial: [TrialOption]) {
            for (index, option) in trial.enumerated() {
                for provide in option.sections.provides {
                    touch(provide.name)
                    entries[provide.name]!.extraProvides.append(index)
                }
                for require in option.sections.requires {
                    touch(require.name)
                    var entry = entries[require.name]!
                    entry.providers.append(contentsOf: entry.extraProvides)
                    entry.extraProvides = []
                    if entry.providers.isEmpty {
                        entry.earlyRequires.append(index)
                    } else {
                        entry.requires.append(require)
                    }
                    entries[require.name] = entry
                }
            }
        }

        private mutating func touch(_ name: String) {
            if entries[name] == nil {
                entries[name] = Entry()
                names.append(name)
            }
        }

        func plan(_ trial: [TrialOption]) -> PlanTOML {
            PlanTOML(entries: names.compactMap { name in
                let entry = entries[name]!
                guard !entry.providers.isEmpty, !entry.requires.isEmpty else { return nil }
                return PlanTOML.Entry(providers: entry.providers.map { trial[$0].element }, requires: entry.requires)
            })
        }
    }
}

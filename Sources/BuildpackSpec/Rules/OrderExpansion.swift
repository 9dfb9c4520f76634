/// One element of a candidate group, ready to run `bin/detect`: the group element (with `api` and
/// `homepage` filled in from its descriptor) and the descriptor itself.
public struct CandidateElement: Sendable, Equatable {
    public var element: GroupElement
    public var descriptor: BuildpackTOML

    public init(element: GroupElement, descriptor: BuildpackTOML) {
        self.element = element
        self.descriptor = descriptor
    }
}

/// A group to try: composite buildpacks already expanded, IDs de-duplicated, exec-env filtering applied.
public struct CandidateGroup: Sendable, Equatable {
    public var elements: [CandidateElement]

    public init(elements: [CandidateElement]) { self.elements = elements }

    /// The elements as group elements (what `GroupResolution.resolve` takes).
    public var groupElements: [GroupElement] { elements.map(\.element) }
}

/// Expanding an order into the candidate groups detection tries, in order (§3.1).
///
/// - Groups are tried in order; the first that passes wins.
/// - A composite buildpack is replaced by one candidate per group of its order: the elements before it,
///   that group, and the rest of the outer group. If the composite is optional, one more candidate without
///   it follows. Depth-first, left to right.
/// - An element is skipped when an element of the same kind and **ID** (any version) is already in the
///   candidate.
/// - With extensions, `order-extensions` heads every group as one optional pseudo-element: one candidate per
///   extension group, then one without extensions.
/// - With an execution environment (Platform API ≥ 0.15, `CNB_EXEC_ENV` set), an element whose exec-env list
///   (read for Buildpack API ≥ 0.12 only) is not empty and contains neither the value nor `*` is silently
///   skipped: neither run nor counted, nor used for de-duplication.
///
/// Descriptors are looked up as elements are reached (composites need theirs to expand), so a missing or
/// invalid buildpack anywhere in the order fails the whole expansion; the reference lifecycle only fails when
/// detection reaches it. A composite that contains itself (directly or not) is an error, not an endless loop.
public enum OrderExpansion {
    /// The most candidates an expansion may produce before it fails.
    public static let defaultCandidateLimit = 10_000

    /// The candidate groups of an order, in the order detection tries them.
    /// - Parameters:
    ///   - order: the buildpack order (`order.toml [[order]]`, with system buildpacks applied).
    ///   - extensions: `[[order-extensions]]`, if any.
    ///   - executionEnvironment: `CNB_EXEC_ENV` when exec-env filtering applies (Platform API ≥ 0.15), else `nil`.
    ///   - limit: the most candidates to produce.
    ///   - lookup: the descriptor of an element: `<buildpacks>/<escaped id>/<version>/buildpack.toml`, or
    ///     `<extensions>/<escaped id>/<version>/extension.toml` when `kind == .extension`. Called once per element
    ///     reached (cache if reading is expensive); its errors end the expansion.
    public static func candidates(
        order: [OrderGroup], extensions: [OrderGroup] = [], executionEnvironment: String? = nil,
        limit: Int = defaultCandidateLimit,
        lookup: (GroupElement) throws(SpecError) -> BuildpackTOML
    ) throws(SpecError) -> [CandidateGroup] {
        var expansion = Expansion(extensions: extensions, executionEnvironment: executionEnvironment, limit: limit)
        let head: [Item] = extensions.isEmpty ? [] : [.extensions]
        for group in order {
            try expansion.expandGroup(head + group.group.map { Item.element($0, ancestry: []) }, done: [],
                                      lookup: lookup)
        }
        return expansion.out
    }

    fileprivate enum Item {
        case element(GroupElement, ancestry: [ModuleKey])
        case extensions
    }

    private struct Expansion {
        let extensions: [OrderGroup]
        let executionEnvironment: String?
        let limit: Int
        var out: [CandidateGroup] = []

        mutating func expandGroup(_ items: [Item], done: [CandidateElement],
                                  lookup: (GroupElement) throws(SpecError) -> BuildpackTOML) throws(SpecError)
        {
            var done = done
            for (index, item) in items.enumerated() {
                let rest = Array(items[(index + 1)...])
                switch item {
                case .extensions:
                    let groups = extensions.map { group in
                        group.group.map { element -> Item in
                            var e = element
                            e.kind = .extension
                            e.optional = true
                            return .element(e, ancestry: [])
                        }
                    }
                    try expandOrder(groups, rest: rest, optional: true, done: done, lookup: lookup)
                    return
                case .element(let element, let ancestry):
                    if done.contains(where: { $0.element.kind == element.kind && $0.element.id == element.id }) {
                        continue
                    }
                    let descriptor = try lookup(element)
                    if descriptor.isComposite && element.kind == .buildpack {
                        if ancestry.contains(element.key) {
                            throw SpecError(.rule, "composite buildpack \(element) contains itself",
                                            buildpack: element.description)
                        }
                        let groups = descriptor.order.map { group in
                            group.group.map { Item.element($0, ancestry: ancestry + [element.key]) }
                        }
                        try expandOrder(groups, rest: rest, optional: element.optional, done: done, lookup: lookup)
                        return
                    }
                    if let executionEnvironment {
                        let supported = descriptor.effectiveExecEnv
                        if !supported.isEmpty && !supported.contains(executionEnvironment) && !supported.contains("*") {
                            continue
                        }
                    }
                    var resolved = element
                    resolved.api = descriptor.api.description
                    resolved.homepage = descriptor.info.homepage
                    done.append(CandidateElement(element: resolved, descriptor: descriptor))
                }
            }
            if out.count >= limit {
                throw SpecError(.rule, "the order expands to more than \(limit) candidate groups")
            }
            out.append(CandidateGroup(elements: done))
        }

        mutating func expandOrder(_ groups: [[Item]], rest: [Item], optional: Bool, done: [CandidateElement],
                                  lookup: (GroupElement) throws(SpecError) -> BuildpackTOML) throws(SpecError)
        {
            for group in groups { try expandGroup(group + rest, done: done, lookup: lookup) }
            if optional { try expandGroup(rest, done: done, lookup: lookup) }
        }
    }
}

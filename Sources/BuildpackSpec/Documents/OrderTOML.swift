/// `order.toml`: the groups the detector tries, in order.
///
/// ```toml
/// [[order]]
/// [[order.group]]
/// id = "example/node"
/// version = "1.0.0"
/// optional = false
/// [[order-extensions]]          # optional; extensions are always optional
/// [[order-extensions.group]]
/// id = "example/ext"
/// version = "1.0.0"
/// ```
///
/// The detector reads `<layers>/order.toml` if present, else `/cnb/order.toml`.
public struct OrderTOML: TOMLDecodable, TOMLEncodable, Equatable {
    public static let defaultFileName = "order.toml"

    /// `[[order]]`.
    public var order: [OrderGroup]
    /// `[[order-extensions]]` (every element is an optional extension).
    public var orderExtensions: [OrderGroup]

    public init(order: [OrderGroup], orderExtensions: [OrderGroup] = []) {
        self.order = order
        self.orderExtensions = orderExtensions
    }

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        let reader = TableReader(table, context: context)
        var order: [OrderGroup] = []
        for group in try reader.tables("order") { order.append(try OrderGroup.decode(group, kind: .buildpack)) }
        var extensions: [OrderGroup] = []
        for group in try reader.tables("order-extensions") {
            extensions.append(try OrderGroup.decode(group, kind: .extension))
        }
        self.order = order
        self.orderExtensions = extensions
    }

    public func tomlTable() -> TOMLTable {
        var b = TableBuilder()
        b.set("order", tables: order.map { $0.orderTable() })
        b.set("order-extensions", tables: orderExtensions.map { $0.orderTable() })
        return b.table
    }
}

/// `group.toml` (written by the detector): the buildpacks (and extensions) that passed detection, in order.
///
/// ```toml
/// [[group]]
/// id = "example/node"
/// version = "1.0.0"
/// api = "0.12"
/// homepage = "https://example.com"
/// [[group-extensions]]
/// id = "example/ext"
/// version = "1.0.0"
/// api = "0.12"
/// ```
///
/// It never contains `optional`: elements that failed were already removed.
public struct GroupTOML: TOMLDecodable, TOMLEncodable, Equatable {
    public static let defaultFileName = "group.toml"

    /// `[[group]]`.
    public var group: [GroupElement]
    /// `[[group-extensions]]`.
    public var groupExtensions: [GroupElement]

    public init(group: [GroupElement], groupExtensions: [GroupElement] = []) {
        self.group = group.map(\.withoutOptional)
        self.groupExtensions = groupExtensions.map(\.withoutOptional)
    }

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        let reader = TableReader(table, context: context)
        self.group = try GroupElement.decodeGroup(reader, "group", kind: .buildpack)
        self.groupExtensions = try GroupElement.decodeGroup(reader, "group-extensions", kind: .extension)
    }

    public func tomlTable() -> TOMLTable {
        var b = TableBuilder()
        b.set("group", tables: group.map { $0.groupTable() })
        b.set("group-extensions", tables: groupExtensions.map { $0.groupTable() })
        return b.table
    }
}

/// `system.toml` (Platform API ≥ 0.15): buildpacks added before and after every group.
///
/// ```toml
/// [[system.pre.buildpacks]]
/// id = "example/always"
/// version = "1.0.0"
/// optional = false
/// [[system.post.buildpacks]]
/// id = "example/last"
/// version = "1.0.0"
/// ```
public struct SystemTOML: TOMLDecodable, Equatable {
    public static let defaultFileName = "system.toml"

    /// `[[system.pre.buildpacks]]`.
    public var pre: [GroupElement]
    /// `[[system.post.buildpacks]]`.
    public var post: [GroupElement]

    public init(pre: [GroupElement] = [], post: [GroupElement] = []) {
        self.pre = pre
        self.post = post
    }

    public init(table: TOMLTable, context: DocumentContext) throws(SpecError) {
        let reader = TableReader(table, context: context)
        var pre: [GroupElement] = [], post: [GroupElement] = []
        if let system = try reader.table("system") {
            for element in try system.table("pre")?.tables("buildpacks") ?? [] {
                pre.append(try GroupElement.decode(element, kind: .buildpack))
            }
            for element in try system.table("post")?.tables("buildpacks") ?? [] {
                post.append(try GroupElement.decode(element, kind: .buildpack))
            }
        }
        self.pre = pre
        self.post = post
    }

    /// The order with the system buildpacks added: `pre` prepended and `post` appended to every group,
    /// except an element whose ID the group already has. As the reference lifecycle does, `optional` of
    /// system buildpacks is dropped (they are required).
    public func applied(to order: [OrderGroup]) -> [OrderGroup] {
        order.map { group in
            let ids = Set(group.group.map(\.id))
            let before = pre.filter { !ids.contains($0.id) }.map(\.withoutOptional)
            let after = post.filter { !ids.contains($0.id) }.map(\.withoutOptional)
            return OrderGroup(before + group.group + after)
        }
    }
}

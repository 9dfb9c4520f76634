/// A platform as image-spec `image-index.md` describes it: `os`, `architecture`, `variant`.
public struct Platform: Sendable, Equatable {
    public var os: String
    public var architecture: String
    public var variant: String?

    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
    }

    public var description: String { os + "/" + architecture + (variant.map { "/" + $0 } ?? "") }
}

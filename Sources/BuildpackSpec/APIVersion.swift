/// A Buildpack or Platform API version: `<major>.<minor>`, or `<major>` meaning `<major>.0`.
/// Both parts are unsigned integers compared numerically (`0.10` is newer than `0.9`).
public struct APIVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var major: UInt64
    public var minor: UInt64

    public init(_ major: UInt64, _ minor: UInt64) {
        self.major = major
        self.minor = minor
    }

    /// Parses `"X.Y"` or `"X"`; `nil` for anything else (signs, spaces, a `v` prefix, a third part, ...).
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2 else { return nil }
        var numbers: [UInt64] = []
        for part in parts {
            guard !part.isEmpty, part.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = UInt64(part) else {
                return nil
            }
            numbers.append(n)
        }
        self.init(numbers[0], numbers.count == 2 ? numbers[1] : 0)
    }

    public static func < (lhs: APIVersion, rhs: APIVersion) -> Bool {
        (lhs.major, lhs.minor) < (rhs.major, rhs.minor)
    }

    public var description: String { "\(major).\(minor)" }

    /// The Buildpack API versions this platform implements (the reference lifecycle's range).
    public static let supportedBuildpackAPIs: ClosedRange<APIVersion> = APIVersion(0, 7)...APIVersion(0, 12)
    /// The Platform API versions this platform implements.
    public static let supportedPlatformAPIs: ClosedRange<APIVersion> = APIVersion(0, 7)...APIVersion(0, 15)

    /// Parses a buildpack's `api` and checks it is supported.
    ///
    /// Fails with `.unsupportedBuildpackAPI` (the CLI exits 12) when the text is not a version or the
    /// version is outside `supportedBuildpackAPIs`.
    public static func buildpackAPI(_ text: String, file: String? = nil, keyPath: String? = "api",
                                    buildpack: String? = nil) throws(SpecError) -> APIVersion
    {
        guard let version = APIVersion(text) else {
            throw SpecError(.unsupportedBuildpackAPI,
                            "\"\(text)\" is not a Buildpack API version (expected \"<major>.<minor>\")",
                            file: file, keyPath: keyPath, buildpack: buildpack)
        }
        guard supportedBuildpackAPIs.contains(version) else {
            throw SpecError(.unsupportedBuildpackAPI,
                            "Buildpack API \(version) is not supported (supported: \(supportedBuildpackAPIs.lowerBound) to \(supportedBuildpackAPIs.upperBound))",
                            file: file, keyPath: keyPath, buildpack: buildpack)
        }
        return version
    }

    /// Parses a Platform API version (`CNB_PLATFORM_API`) and checks it is supported (the CLI exits 11).
    public static func platformAPI(_ text: String) throws(SpecError) -> APIVersion {
        guard let version = APIVersion(text) else {
            throw SpecError(.unsupportedPlatformAPI,
                            "\"\(text)\" is not a Platform API version (expected \"<major>.<minor>\")")
        }
        guard supportedPlatformAPIs.contains(version) else {
            throw SpecError(.unsupportedPlatformAPI,
                            "Platform API \(version) is not supported (supported: \(supportedPlatformAPIs.lowerBound) to \(supportedPlatformAPIs.upperBound))")
        }
        return version
    }
}

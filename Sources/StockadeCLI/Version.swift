import BuildpackSpec

/// What `stockade --version` prints: the release, then the Buildpack and Platform APIs it
/// implements, as the reference lifecycle's `-version` and its `lifecycle.toml` tell them.
/// The release is written here and nowhere else; `make install` reads it from the binary.
enum Version {
    static let release = "0.1.0"

    static var text: String {
        """
        stockade \(release)
        Buildpack API: \(listed(APIVersion.supportedBuildpackAPIs))
        Platform API: \(listed(APIVersion.supportedPlatformAPIs))
        """
    }

    /// Every version of the range, `0.7 0.8 ... 0.12`: the form `lifecycle.toml`'s `supported` lists use.
    private static func listed(_ range: ClosedRange<APIVersion>) -> String {
        precondition(range.lowerBound.major == range.upperBound.major, "a supported range spans one major version")
        return (range.lowerBound.minor...range.upperBound.minor)
            .map { APIVersion(range.lowerBound.major, $0).description }
            .joined(separator: " ")
    }
}

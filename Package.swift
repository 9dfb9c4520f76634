// swift-tools-version:6.0
import PackageDescription

// Arrows point one way: stockade → StockadeCLI → SandboxExecutor → {Lifecycle → BuildpackSpec,
// Sandbox → Seccomp, CSandbox}.
// The sandbox knows nothing of buildpacks; C is confined to the leaf targets.
let package = Package(
    name: "stockade",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "stockade", targets: ["stockade"]),
        .library(name: "Sandbox", targets: ["Sandbox"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp",
                       providers: [.apt(["libseccomp-dev"])]),
        .systemLibrary(name: "CCap", pkgConfig: "libcap",
                       providers: [.apt(["libcap-dev"])]),
        // The only code that runs between clone() and execve(): async-signal-safe C.
        .target(name: "CSandbox"),
        // Seccomp profiles in the OCI/Docker JSON format, compiled to BPF with libseccomp.
        .target(name: "Seccomp", dependencies: ["CSeccomp"]),
        .target(name: "Sandbox", dependencies: ["CSandbox", "Seccomp", "CCap"]),
        // The Buildpack and Platform API as values: the files, their rules, detection's resolution.
        .target(name: "BuildpackSpec"),
        // The lifecycle: order, detection, build plan, layers. Runs processes only
        // through its BuildpackExecutor protocol; knows no namespaces.
        .target(name: "Lifecycle", dependencies: ["BuildpackSpec"]),
        // The lifecycle's executor backed by real sandboxes.
        .target(name: "SandboxExecutor", dependencies: ["Lifecycle", "Sandbox", "Seccomp"]),
        .target(name: "StockadeCLI", dependencies: [
            "Sandbox", "Seccomp", "BuildpackSpec", "Lifecycle", "SandboxExecutor",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "stockade", dependencies: ["StockadeCLI"]),
        .testTarget(name: "SeccompTests", dependencies: ["Seccomp"]),
        .testTarget(name: "BuildpackSpecTests", dependencies: ["BuildpackSpec"]),
        // Real sandboxes for the tests: the stockade binary, a static probe, unprivileged users.
        .target(name: "StockadeTestSupport", path: "Tests/Support"),
        .testTarget(name: "SandboxTests", dependencies: ["Sandbox", "Seccomp", "StockadeTestSupport", "stockade"]),
        .testTarget(name: "LifecycleTests", dependencies: ["Lifecycle", "BuildpackSpec", "StockadeTestSupport", "stockade"]),
    ],
    swiftLanguageModes: [.v6]
)

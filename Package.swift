// swift-tools-version:6.0
import PackageDescription

// Release builds search .build/static-libs first (`make build` fills it: scripts/static-libs.sh):
// libstdc++, libgcc, libseccomp and libcap are then linked in, not loaded; binding libstdc++'s
// symbols cost every start about a millisecond. Without the directory the link uses the shared
// libraries. Only release: a debug build loads the shared Swift runtime, which loads libstdc++.
// --no-export-dynamic undoes the static stdlib's -export-dynamic: nothing loads against this
// executable's symbols, and the runtime's start-up dladdr walked all 7,900 of them. GNU ld
// (binutils, as gold) instead of gold, for DT_RELR: the loader applies the 44K relative
// relocations from a 8 KiB bitmap, not a 1 MiB table. Full RELRO (-z relro -z now, and
// scripts/release-link.ld so that GNU ld can make it): the GOT, `.data.rel.ro` and `.rodata` are
// read-only once the loader is done, for a supervisor whose C libraries parse hostile input.
let staticLibraries = Context.packageDirectory + "/.build/static-libs"
let releaseLinkScript = Context.packageDirectory + "/scripts/release-link.ld"

// Arrows point one way: stockade → StockadeCLI → {GoFlags, Registry → OCI, SandboxExecutor → {Lifecycle → {BuildpackSpec, OCI, TerminalText},
// Sandbox → Seccomp, CSandbox}}; stockade-launcher → BuildpackSpec. SystemCalls and TextEncoding are leaves every layer may use.
// The sandbox knows nothing of buildpacks, OCI nothing of either; C is confined to the leaf targets.
// CrashSafety (fault points, the cleanup journal) sits on SystemCalls alone; every layer may use it.
let package = Package(
    name: "stockade",
    products: [
        .executable(name: "stockade", targets: ["stockade"]),
        .executable(name: "stockade-launcher", targets: ["stockade-launcher"]),
        .library(name: "Sandbox", targets: ["Sandbox"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // No pkg-config: its -L of the system directory would come before .build/static-libs.
        .systemLibrary(name: "CSeccomp", providers: [.apt(["libseccomp-dev"])]),
        .systemLibrary(name: "CCap", providers: [.apt(["libcap-dev"])]),
        // Headers only: OCI links libarchive itself (statically; see there).
        .systemLibrary(name: "CArchive", providers: [.apt(["libarchive-dev"])]),
        // openat2, which Swift cannot call through the variadic syscall(2).
        .systemLibrary(name: "CLinux"),
        // The system-call layer: swift-system's FileDescriptor and Errno, and what it lacks
        // (retry on EINTR, bounded reads, directory entries, openat2, O_TMPFILE links).
        .target(name: "SystemCalls", dependencies: ["CLinux", .product(name: "SystemPackage", package: "swift-system")]),
        // Strict UTF-8 validation and string escaping: what the JSON and TOML code share.
        .target(name: "TextEncoding"),
        // JSON text without Foundation: a strict, bounded parser and string quoting.
        .target(name: "JSON", dependencies: ["TextEncoding"]),
        // Untrusted output made safe for a terminal: colour passes, the rest of the escape grammar does not.
        .target(name: "TerminalText"),
        // Test fault points and the journal a janitor process cleans up from after a SIGKILL.
        .target(name: "CrashSafety", dependencies: ["SystemCalls"]),
        // The only code that runs between clone() and execve(): async-signal-safe C.
        .target(name: "CSandbox"),
        // Seccomp profiles in the OCI/Docker JSON format, compiled to BPF with libseccomp.
        .target(name: "Seccomp", dependencies: ["CSeccomp", "JSON", "SystemCalls"]),
        .target(name: "Sandbox", dependencies: ["CSandbox", "CLinux", "Seccomp", "CCap", "JSON", "CrashSafety", "SystemCalls"]),
        // OCI image layouts: blobs by digest, manifests, configs, tar layers written and read with libarchive.
        // libarchive is linked statically, with only the parts OCI calls (--gc-sections): its
        // shared library would load libxml2 and ICU into every `stockade exec`, ~2 ms of start-up.
        .target(name: "OCI", dependencies: ["JSON", "CArchive", "CLinux", "CrashSafety", "SystemCalls"],
                linkerSettings: [.unsafeFlags(["-Xlinker", "--gc-sections",
                                               "-Xlinker", "-Bstatic", "-Xlinker", "-larchive", "-Xlinker", "-lz",
                                               "-Xlinker", "-Bdynamic", "-Xlinker", "-l:libzstd.so.1"])]),
        // Go's `flag` syntax, which platforms use to call the lifecycle's phases.
        .target(name: "GoFlags"),
        // Registries (OCI distribution spec) through libcurl, loaded with dlopen when a registry is
        // first contacted: no other command loads it. Pulls into and pushes from OCI layouts.
        .target(name: "Registry", dependencies: ["OCI", "JSON", "CrashSafety", "SystemCalls"]),
        // The Buildpack and Platform API as values: the files, their rules, detection's resolution.
        .target(name: "BuildpackSpec", dependencies: ["TextEncoding", "SystemCalls"]),
        // The lifecycle: order, detection, build plan, layers. Runs processes only
        // through its BuildpackExecutor protocol; knows no namespaces.
        .target(name: "Lifecycle", dependencies: ["BuildpackSpec", "OCI", "JSON", "TerminalText", "CrashSafety", "SystemCalls"]),
        // The lifecycle's executor backed by real sandboxes.
        .target(name: "SandboxExecutor", dependencies: ["Lifecycle", "Sandbox", "Seccomp", "TerminalText", "CrashSafety", "SystemCalls"]),
        .target(name: "StockadeCLI", dependencies: [
            "Sandbox", "Seccomp", "BuildpackSpec", "Lifecycle", "GoFlags", "SandboxExecutor", "OCI", "Registry", "TerminalText", "CrashSafety", "CLinux",
            "SystemCalls", .product(name: "SystemPackage", package: "swift-system"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "stockade", dependencies: ["StockadeCLI"],
                          linkerSettings: [.unsafeFlags(["-L", staticLibraries, "-Xclang-linker", "-static-libgcc",
                                                         "-Xlinker", "--no-export-dynamic",
                                                         "-use-ld=bfd", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                                                         "-Xlinker", "-z", "-Xlinker", "relro", "-Xlinker", "-z", "-Xlinker", "now",
                                                         "-Xlinker", "-T", "-Xlinker", releaseLinkScript],
                                                        .when(configuration: .release))]),
        // The launcher placed in every exported image: a static executable, so it runs on any run
        // image (busybox-only or distroless) with no Swift runtime there.
        // Stripped: it is copied into every image, and symbols there serve nobody.
        .executableTarget(name: "stockade-launcher", dependencies: ["BuildpackSpec", "SystemCalls"],
                          linkerSettings: [.unsafeFlags(["-static-executable", "-Xlinker", "--strip-all"])]),
        .testTarget(name: "SeccompTests", dependencies: ["Seccomp", "JSON", "StockadeTestSupport"]),
        .testTarget(name: "BuildpackSpecTests", dependencies: ["BuildpackSpec"]),
        .testTarget(name: "GoFlagsTests", dependencies: ["GoFlags"]),
        .testTarget(name: "SystemCallsTests", dependencies: ["SystemCalls", "CLinux"]),
        .testTarget(name: "TerminalTextTests", dependencies: ["TerminalText", "StockadeTestSupport"]),
        // Real sandboxes for the tests: the stockade binary, a static probe, unprivileged users.
        .target(name: "StockadeTestSupport", path: "Tests/Support"),
        .testTarget(name: "SandboxTests", dependencies: ["Sandbox", "StockadeTestSupport", "stockade"]),
        .testTarget(name: "LifecycleTests", dependencies: ["StockadeTestSupport", "stockade"]),
        // The launcher is not a dependency: its -static-executable would be linked into the test bundle.
        // `make test` builds it first; the fixture finds it next to stockade.
        .testTarget(name: "LauncherTests", dependencies: ["StockadeTestSupport", "stockade"]),
        .testTarget(name: "RegistryTests", dependencies: ["Registry", "OCI", "JSON", "StockadeTestSupport", "stockade"]),
        .testTarget(name: "ImageTests", dependencies: ["OCI", "JSON", "Lifecycle", "CrashSafety", "StockadeTestSupport", "stockade"]),
        // The command as a user installs it: --version, make install and uninstall, completions, man pages.
        .testTarget(name: "CLITests", dependencies: ["StockadeTestSupport", "stockade"]),
    ],
    swiftLanguageModes: [.v6]
)

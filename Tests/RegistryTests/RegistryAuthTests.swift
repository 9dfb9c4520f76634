import Foundation
import Glibc
import StockadeTestSupport
import Testing

/// A registry with htpasswd basic auth: each credential source works, a wrong or missing one is
/// refused naming the registry and the source, and no credential reaches a buildpack.
@Suite(.serialized, .timeLimit(.minutes(5))) struct RegistryAuthTests {
    static let user = "stockade"
    static let password = "s3cret-pass-7Q"
    static var basic: String { Data("\(user):\(password)".utf8).base64EncodedString() }

    /// A directory holding `name` with `text`, readable by every invoker.
    static func file(_ name: String, _ text: String, mode: mode_t = 0o644) throws -> String {
        let directory = Registries.fx.makeDirectory("auth")
        try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
        chmod(directory + "/" + name, mode)
        return directory
    }

    /// A `docker-credential-NAME` that answers `get` for `host` with the right secret.
    static func helper(_ name: String, host: String) throws -> String {
        let directory = try file("docker-credential-" + name, """
            #!/bin/sh
            read server
            [ "$1" = get ] && [ "$server" = "\(host)" ] || exit 1
            printf '{"ServerURL":"%s","Username":"\(user)","Secret":"\(password)"}' "$server"
            """, mode: 0o755)
        return directory
    }

    /// Every way of giving the credential, as the environment a command gets.
    static func sources(_ host: String) throws -> [(String, [String: String])] {
        let auths = #"{"auths":{"\#(host)":{"auth":"\#(basic)"}}}"#
        let helperDirectory = try helper("stockadetest", host: host)
        let path = helperDirectory + ":/usr/local/bin:/usr/bin:/bin"
        return [
            ("docker config auths", ["DOCKER_CONFIG": try file("config.json", auths)]),
            ("docker config with a scheme", ["DOCKER_CONFIG": try file("config.json", #"{"auths":{"https://\#(host)/v2/":{"username":"\#(user)","password":"\#(password)"}}}"#)]),
            ("CNB_REGISTRY_AUTH", ["CNB_REGISTRY_AUTH": #"{"\#(host)":"Basic \#(basic)"}"#]),
            ("REGISTRY_AUTH_FILE", ["REGISTRY_AUTH_FILE": try file("auth.json", auths) + "/auth.json"]),
            ("credHelpers", ["DOCKER_CONFIG": try file("config.json", #"{"credHelpers":{"\#(host)":"stockadetest"}}"#), "PATH": path]),
            ("credsStore", ["DOCKER_CONFIG": try file("config.json", #"{"credsStore":"stockadetest"}"#), "PATH": path]),
        ]
    }

    static func registryWithApp() throws -> TestRegistry {
        let registry = try TestRegistry(user: (user, password))
        let pushed = Registries.skopeoPush(Registries.appLayout, to: "\(registry.host)/app:1", credentials: "\(user):\(password)")
        #expect(pushed.status == 0, "\(pushed)")
        return registry
    }

    @Test func everyCredentialSourceIsUsed() throws {
        guard TestRegistry.available else { try skip("docker-registry is not installed") }
        let registry = try Self.registryWithApp()
        for (name, environment) in try Self.sources(registry.host) {
            let ran = Registries.stockade(["run", "\(registry.host)/app:1", "--insecure-registry", registry.host],
                                          environment: environment)
            #expect(ran.status == 0, "\(name): \(ran)")
            #expect(ran.stdout.contains(Registries.hello), "\(name): \(ran.stdout)")
        }
    }

    @Test(arguments: [Invoker.suiteUser, .subordinateUser])
    func refusalsNameTheRegistryAndTheSource(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        guard TestRegistry.available else { try skip("docker-registry is not installed") }
        let registry = try Self.registryWithApp()
        let wrong = Data("\(Self.user):wrong".utf8).base64EncodedString()
        let config = try Self.file("config.json", #"{"auths":{"\#(registry.host)":{"auth":"\#(wrong)"}}}"#)
        let cases: [([String: String], String)] = [
            ([:], "no credential found"),
            (["DOCKER_CONFIG": config], config + "/config.json"),
            // The first source that has the host wins, even when a later one is right.
            (["CNB_REGISTRY_AUTH": #"{"\#(registry.host)":"Basic \#(wrong)"}"#,
              "DOCKER_CONFIG": try Self.file("config.json", #"{"auths":{"\#(registry.host)":{"auth":"\#(Self.basic)"}}}"#)],
             "CNB_REGISTRY_AUTH"),
        ]
        for (environment, source) in cases {
            let refused = Registries.stockade(["run", "\(registry.host)/app:1", "--insecure-registry", registry.host],
                                              as: invoker, environment: environment)
            #expect(refused.status == 81, "\(environment): \(refused)")
            #expect(Registries.oneErrorLine(refused), "\(refused.stderr)")
            #expect(refused.stderr.contains(registry.host) && refused.stderr.contains(source), "\(refused.stderr)")
            #expect(!refused.stderr.contains(Self.password) && !refused.stderr.contains(Self.basic))
        }
    }

    /// A helper that never answers, and one that answers but leaves a process holding its stdout
    /// (a daemon it started): each is stopped at the limit with its process group, the pull is
    /// refused with one line naming the helper, and none of their processes is left.
    @Test func aHelperThatDoesNotAnswerIsStopped() throws {
        guard TestRegistry.available else { try skip("docker-registry is not installed") }
        let registry = try Self.registryWithApp()
        let helpers = [
            ("stockadehangs", "#!/bin/sh\nexec sleep 987651\n"),
            ("stockadedaemon", "#!/bin/sh\nsleep 987652 &\nprintf '{\"Username\":\"\(Self.user)\",\"Secret\":\"\(Self.password)\"}'\n"),
        ]
        for (name, script) in helpers {
            let directory = try Self.file("docker-credential-" + name, script, mode: 0o755)
            let environment = ["DOCKER_CONFIG": try Self.file("config.json", #"{"credsStore":"\#(name)"}"#),
                               "PATH": directory + ":/usr/local/bin:/usr/bin:/bin", "STOCKADE_CREDENTIAL_HELPER_TIMEOUT": "2"]
            let refused = Registries.stockade(["run", "\(registry.host)/app:1", "--insecure-registry", registry.host],
                                              environment: environment)
            #expect(refused.status == 81, "\(name): \(refused)")
            #expect(Registries.oneErrorLine(refused), "\(refused.stderr)")
            #expect(refused.stderr.contains("docker-credential-\(name)") && refused.stderr.contains("within 2 s"), "\(refused.stderr)")
        }
        let left = Fixture.run(["pgrep", "-f", "sleep 98765[12]"])
        #expect(left.stdout.isEmpty, "left running: \(left.stdout)")

        let wrong = Registries.stockade(["run", "\(registry.host)/app:1", "--insecure-registry", registry.host],
                                        environment: ["STOCKADE_CREDENTIAL_HELPER_TIMEOUT": "soon",
                                                      "DOCKER_CONFIG": try Self.file("config.json", #"{"credsStore":"stockadehangs"}"#)])
        #expect(wrong.status == 81 && Registries.oneErrorLine(wrong) && wrong.stderr.contains("not whole seconds"), "\(wrong)")
    }

    /// The secret as octal escapes for the shell's printf: the script itself never holds it.
    static func octal(_ text: String) -> String {
        text.utf8.map { "\\0" + String($0, radix: 8) }.joined()
    }

    /// A buildpack that looks for the password and its base64 form everywhere it can read:
    /// its environment, every process's environ and cmdline, its platform directory, /tmp,
    /// /home, /root, /run, /etc, the workspace and layers, its home, the files the
    /// credentials are in, and the credential helper.
    static func scanningBuildpack(paths: [String]) throws -> String {
        try Registries.fx.scriptBuildpack(id: "test/scan", build: """
            scan=$(mktemp -d /tmp/scan.XXXXXX)
            printf '%b\\n%b\\n' '\(octal(password))' '\(octal(basic))' > "$scan/needles"
            found=""
            env | grep -q -a -F -f "$scan/needles" && found="$found env"
            for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do
                grep -q -a -F -f "$scan/needles" "$f" 2>/dev/null && found="$found $f"
            done
            for d in "$2" /platform /tmp /home /root /run /etc /workspace /layers "$1" "$HOME"; do
                [ -e "$d" ] || continue
                for hit in $(grep -r -l -a -F -f "$scan/needles" --exclude-dir="${scan#/tmp/}" "$d" 2>/dev/null); do
                    found="$found $hit"
                done
            done
            for f in \(paths.map { "'\($0)'" }.joined(separator: " ")); do
                [ -r "$f" ] && found="$found $f"
            done
            command -v docker-credential-stockadetest >/dev/null && found="$found helper"
            echo "scan:${found:- clean}"
            """)
    }

    @Test(arguments: [Invoker.suiteUser, .subordinateUser])
    func credentialsNeverReachABuildpack(_ invoker: Invoker) throws {
        try invoker.requireAvailable()
        guard TestRegistry.available else { try skip("docker-registry is not installed") }
        let registry = try TestRegistry(user: (Self.user, Self.password))
        var environment: [String: String] = [:]
        var paths: [String] = []
        for (_, source) in try Self.sources(registry.host) {
            for (key, value) in source where environment[key] == nil { environment[key] = value }
        }
        paths = [environment["DOCKER_CONFIG"]! + "/config.json", environment["REGISTRY_AUTH_FILE"]!,
                 String(environment["PATH"]!.prefix { $0 != ":" }) + "/docker-credential-stockadetest"]
        let buildpack = try Self.scanningBuildpack(paths: paths)
        let app = Registries.fx.makeDirectory("scan-app")
        let output = "\(registry.host)/scanned:1"
        let built = Registries.stockade(["build", "--buildpack", buildpack, "--path", app, "--network", "none",
                                         "--output", output, "--insecure-registry", registry.host],
                                        as: invoker, environment: environment)
        #expect(built.status == 0, "\(built)")
        // The push needed the credential: the supervisor had it.
        #expect(built.stdout.contains("Pushed \(output)@sha256:"), "\(built.stdout)")
        #expect(built.stdout.contains("scan: clean"), "\(built.stdout)")

        // Control: the same scan finds the secret when it is handed to the buildpack.
        let leaked = Registries.stockade(["build", "--buildpack", buildpack, "--path", app, "--network", "none",
                                          "--env", "LEAKED=\(Self.password)"], as: invoker, environment: environment)
        #expect(leaked.status == 0, "\(leaked)")
        #expect(leaked.stdout.contains("scan:") && !leaked.stdout.contains("scan: clean"), "\(leaked.stdout)")
    }
}

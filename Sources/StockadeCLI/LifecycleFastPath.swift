import ArgumentParser

/// `stockade detect` and `stockade build`'s usual command lines, parsed without
/// ArgumentParser, as `ExecFastPath` parses `exec`'s: reflecting over their thirty
/// options cost a small build a sixth of its time. Only plain long options, each
/// single-valued one at most once, and nothing else; on anything more (`--help`, a
/// positional word, an unknown or repeated option, a value that fails to convert
/// or to validate) it answers nil and ArgumentParser parses the whole line.
/// `LifecycleFastPathTests` holds the two to the same request.
enum LifecycleFastPath {
    static func parse(_ arguments: ArraySlice<String>) -> LifecycleCommand? {
        guard let name = arguments.first, name == "detect" || name == "build" else { return nil }
        var values = Values(build: name == "build")
        guard let rest = LongOptions.scan(arguments.dropFirst(), isFlag: { $0 == "keep-layers" || $0 == "require-namespaces" },
                                          take: { values.set($0, $1) }),
              rest.isEmpty else { return nil }
        do {
            if values.build {
                try values.request.validate()
                return .build(values.request)
            }
            try values.request.lifecycle.validate()
            return .detect(values.request.lifecycle)
        } catch {
            return nil
        }
    }

    private struct Values {
        let build: Bool
        var request = BuildRequest()
        /// The single-valued options given so far: a second is ArgumentParser's to judge.
        var given: [Substring] = []

        /// False where ArgumentParser must decide: an unknown or repeated option, a failed conversion.
        mutating func set(_ name: Substring, _ value: String) -> Bool {
            switch name {
            case "buildpack": request.lifecycle.buildpacks.append(value); return true
            case "env": request.lifecycle.environment.append(value); return true
            case "insecure-registry" where build: request.image.insecureRegistries.append(value); return true
            default: break
            }
            guard !given.contains(name) else { return false }
            given.append(name)
            switch name {
            case "path": request.lifecycle.path = value
            case "buildpacks-dir": request.lifecycle.buildpacksDir = value
            case "order": request.lifecycle.order = value
            case "builder": request.lifecycle.builder = value
            case "store": request.lifecycle.store = value
            case "env-file": request.lifecycle.envFile = value
            case "platform": request.lifecycle.platform = value
            case "layers": request.lifecycle.layers = value
            case "keep-layers": request.lifecycle.keepLayers = true
            case "report": request.lifecycle.report = value
            case "audit": request.lifecycle.audit = value
            case "audit-max-bytes": request.lifecycle.auditCaps.auditMaxBytes = value
            case "audit-max-rate": return Self.convert(value, into: &request.lifecycle.auditCaps.auditMaxRate)
            case "jobs": return Self.convert(value, into: &request.lifecycle.jobs)
            case "timeout": return Self.convert(value, into: &request.lifecycle.timeout)
            case "user": request.lifecycle.user = value
            case "rootfs": request.lifecycle.rootfs = value
            case "detect-profile": request.lifecycle.detectProfile = value
            case "build-profile": request.lifecycle.buildProfile = value
            case "memory": request.lifecycle.limits.memory = value
            case "pids": return Self.convert(value, into: &request.lifecycle.limits.pids)
            case "cpus": return Self.convert(value, into: &request.lifecycle.limits.cpus)
            case "disk": request.lifecycle.disk.size = value
            case "require-namespaces": request.lifecycle.requireNamespaces = true
            case "network" where build: request.network = value
            case "output" where build: request.image.output = value
            case "run-image" where build: request.image.runImage = value
            case "previous-image" where build: request.image.previousImage = value
            case "cache-dir" where build: request.image.cacheDir = value
            case "cache-image" where build: request.image.cacheImage = value
            default: return false
            }
            return true
        }

        /// The value as ArgumentParser converts it, or false.
        private static func convert<T: ExpressibleByArgument>(_ value: String, into field: inout T?) -> Bool {
            guard let converted = T(argument: value) else { return false }
            field = converted
            return true
        }
    }
}

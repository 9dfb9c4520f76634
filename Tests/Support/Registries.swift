import Foundation
import Glibc

/// A real registry for the tests: Debian's `docker-registry` (distribution 2.8) on a free
/// loopback port, its storage in a fresh directory, optionally with htpasswd basic auth and TLS
/// from a self-signed certificate. Stopped (killed) with `stop()` or at the end of the process.
public final class TestRegistry: @unchecked Sendable {
    public let port: Int
    /// `localhost:PORT`: what image references name.
    public let host: String
    public let directory: String
    /// The registry's own log: one access line per request.
    public let logPath: String
    /// The self-signed certificate, when serving TLS (also its own CA).
    public let certificate: String?
    private let process: Process

    public static var available: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/docker-registry") }

    public init(tls: Bool = false, user: (name: String, password: String)? = nil) throws {
        guard Self.available else { throw TestRegistryError("docker-registry (Debian's docker-registry) is not installed") }
        let fx = Fixture.shared
        directory = fx.makeDirectory("registry")
        port = try Self.freePort()
        host = "localhost:\(port)"
        logPath = directory + "/registry.log"
        var config = """
        version: 0.1
        log:
          level: info
        storage:
          filesystem:
            rootdirectory: \(directory)/storage
          delete:
            enabled: true
        http:
          addr: 127.0.0.1:\(port)

        """
        if tls {
            let made = Fixture.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                                    "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem",
                                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            guard made.status == 0 else { throw TestRegistryError("openssl: \(made)") }
            chmod(directory + "/cert.pem", 0o644)
            certificate = directory + "/cert.pem"
            config += "  tls:\n    certificate: \(directory)/cert.pem\n    key: \(directory)/key.pem\n"
        } else {
            certificate = nil
        }
        if let user {
            let hashed = Fixture.run(["htpasswd", "-Bbn", user.name, user.password])
            guard hashed.status == 0 else { throw TestRegistryError("htpasswd: \(hashed)") }
            try hashed.stdout.write(toFile: directory + "/htpasswd", atomically: true, encoding: .utf8)
            config += "auth:\n  htpasswd:\n    realm: stockade-tests\n    path: \(directory)/htpasswd\n"
        }
        try config.write(toFile: directory + "/config.yml", atomically: true, encoding: .utf8)
        process = try TestRegistry.startServer("/usr/bin/docker-registry", ["serve", directory + "/config.yml"], log: logPath)
        try Self.waitForListener(port: port, process: process, log: logPath)
    }

    /// Starts a server with its output in `log`; the suite's end stops every one started.
    static func startServer(_ executable: String, _ arguments: [String], log logPath: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        started.append(process.processIdentifier)
        return process
    }

    deinit { stop() }

    /// SIGKILL: children of the test process inherit its blocked signals, so SIGTERM may never arrive.
    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Digests fetched with `GET /v2/<repo>/blobs/<digest>`, in order, from the access log.
    public func blobGETs() -> [String] {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard let range = line.range(of: "\"GET /v2/"), line.contains("/blobs/sha256:") else { return nil }
            let request = line[range.upperBound...].prefix { $0 != " " }
            guard let at = request.range(of: "/blobs/") else { return nil }
            return String(request[at.upperBound...])
        }
    }

    // Killed at exit even when a test fails before stopping it.
    nonisolated(unsafe) static var started: [Int32] = {
        atexit { for pid in TestRegistry.started { kill(pid, SIGKILL) } }
        return []
    }()

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw TestRegistryError("no free loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Polls until something accepts on the port (the registry has no readiness signal).
    static func waitForListener(port: Int, process: Process?, log: String) throws {
        for _ in 0..<400 {
            if let process, !process.isRunning {
                throw TestRegistryError("the registry exited: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            close(fd)
            if connected { return }
            usleep(25_000)
        }
        throw TestRegistryError("the registry did not listen on \(port)")
    }
}

/// The hostile registry (Tests/Fixtures/hostile-registry.py) in one of its modes.
public final class HostileRegistry: @unchecked Sendable {
    public let host: String
    public let logPath: String
    private let process: Process

    public init(_ mode: String) throws {
        let fx = Fixture.shared
        let directory = fx.makeDirectory("hostile-\(mode)")
        logPath = directory + "/requests.log"
        process = try TestRegistry.startServer("/usr/bin/python3", [fx.repo + "/Tests/Fixtures/hostile-registry.py", mode, directory + "/port"],
                                               log: logPath)
        var port: Int?
        for _ in 0..<400 where port == nil {
            port = (try? String(contentsOfFile: directory + "/port", encoding: .utf8)).flatMap { Int($0) }
            if port == nil { usleep(25_000) }
        }
        guard let port else { throw TestRegistryError("the hostile registry did not start: \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")") }
        host = "127.0.0.1:\(port)"
    }

    deinit {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    public var requests: [String] {
        ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }
}

public struct TestRegistryError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

import Passthrough
import Testing

@testable import GraceAPI
@testable import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// openapi.yaml is the truth: the routes the server registers and the operations the document
/// describes must be the same set, and the document served must be the file.
@Suite("Contract")
struct ContractTests {
    static let repositoryRoot: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path
    }()

    static func openAPIFile() throws -> String {
        String(decoding: try SysfsRoot(path: repositoryRoot).readBytes("openapi.yaml"), as: UTF8.self)
    }

    /// `(METHOD, /path)` for every operation: path keys at two spaces under `paths:`, methods at four.
    static func documentedOperations(_ yaml: String) -> Set<String> {
        var operations: Set<String> = []
        var inPaths = false
        var currentPath: String?
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty { inPaths = line == "paths:" }
            guard inPaths else { continue }
            if line.hasPrefix("  /") && line.hasSuffix(":") && !line.hasPrefix("   ") {
                currentPath = String(line.dropFirst(2).dropLast())
            } else if let currentPath, line.hasPrefix("    ") && !line.hasPrefix("     ") {
                let key = line.dropFirst(4).prefix { $0 != ":" }
                if ["get", "put", "post", "delete", "patch"].contains(key) {
                    operations.insert(key.uppercased() + " " + currentPath)
                }
            }
        }
        return operations
    }

    @Test("the routes a simulated server registers are exactly the documented operations")
    func routesMatchDocument() async throws {
        let service = try await RunningService.start()
        let served = Set(service.application.routes.map { "\($0.method) \($0.pattern)" })
        let documented = Self.documentedOperations(try Self.openAPIFile())
        #expect(!documented.isEmpty)
        #expect(served.subtracting(documented).isEmpty, "served but not documented")
        #expect(documented.subtracting(served).isEmpty, "documented but not served")
    }

    /// `METHOD /path` to the `x-required-role` of its operation (six spaces in, right under the method).
    static func documentedRoles(_ yaml: String) -> [String: String] {
        var roles: [String: String] = [:]
        var inPaths = false
        var currentPath: String?
        var currentOperation: String?
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty { inPaths = line == "paths:" }
            guard inPaths else { continue }
            if line.hasPrefix("  /") && line.hasSuffix(":") && !line.hasPrefix("   ") {
                currentPath = String(line.dropFirst(2).dropLast())
                currentOperation = nil
            } else if let currentPath, line.hasPrefix("    ") && !line.hasPrefix("     ") {
                let key = line.dropFirst(4).prefix { $0 != ":" }
                currentOperation =
                    ["get", "put", "post", "delete", "patch"].contains(key)
                    ? key.uppercased() + " " + currentPath : nil
            } else if let currentOperation, line.hasPrefix("      x-required-role:") {
                roles[currentOperation] = String(
                    line.dropFirst("      x-required-role:".count).drop { $0 == " " })
            }
        }
        return roles
    }

    @Test("every operation's x-required-role in openapi.yaml is the role the server enforces")
    func rolesMatchDocument() async throws {
        let service = try await RunningService.start()
        let documented = Self.documentedRoles(try Self.openAPIFile())
        for route in service.application.routes {
            let operation = "\(route.method) \(route.pattern)"
            // A public route (the probes) is documented as needing no role.
            #expect(documented[operation] == (route.role?.rawValue ?? "none"), "\(operation)")
        }
        #expect(documented.count == service.application.routes.count)
    }

    @Test("GET /openapi.yaml serves the bytes of the repository's openapi.yaml")
    func servedDocumentIsTheFile() async throws {
        let file = try SysfsRoot(path: Self.repositoryRoot).readBytes("openapi.yaml")
        let service = try await RunningService.start()
        let served = try await service.get("/openapi.yaml")
        #expect(served.status == 200 && served.header("Content-Type") == "application/yaml")
        #expect(served.body == file)
    }
}

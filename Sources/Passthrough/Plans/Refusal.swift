/// Why a plan will not be carried out, what the operator should do about it, and the HTTP status the
/// API answers with.
public struct Refusal: Hashable, Sendable, Encodable {
    public enum Code: String, Hashable, Sendable, Codable {
        case notFound = "not-found"
        case notEndpoint = "not-endpoint"
        case noResetMethod = "no-reset-method"
        case unsupportedMethod = "unsupported-method"
        case busResetForbidden = "bus-reset-forbidden"
        case rootBus = "root-bus"
        case held
        case unknownDriver = "unknown-driver"
        case groupNotViable = "group-not-viable"
        case noOriginalDriver = "no-original-driver"

        /// Whether waiting could help: the device does not exist, something else (a VM, another
        /// driver) is in the way right now, or the request cannot work on this device at all.
        public var kind: Kind {
            switch self {
            case .notFound: .absent
            case .held, .groupNotViable: .inTheWay
            default: .notApplicable
            }
        }
    }

    public enum Kind: Hashable, Sendable {
        case absent
        case inTheWay
        case notApplicable
    }

    public var code: Code
    public var message: String
    public var resolution: String
    /// The functions in the way, each with who holds it (for `held` and `group-not-viable`).
    public var holders: [AffectedFunction]

    public init(code: Code, message: String, resolution: String, holders: [AffectedFunction] = []) {
        self.code = code
        self.message = message
        self.resolution = resolution
        self.holders = holders
    }

    public var kind: Kind { code.kind }

    private enum CodingKeys: String, CodingKey {
        case code, message, resolution, holders
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(code, forKey: .code)
        try container.encode(message, forKey: .message)
        try container.encode(resolution, forKey: .resolution)
        try container.encode(holders, forKey: .holders)
    }

    static func notFound(_ bdf: BDF) -> Refusal {
        Refusal(
            code: .notFound, message: "no PCI function \(bdf) on this host",
            resolution: "check the address with GET /gpus; a removed device comes back after a rescan")
    }

    static func notEndpoint(_ bdf: BDF) -> Refusal {
        Refusal(
            code: .notEndpoint, message: "\(bdf) is a PCI bridge; endpoints only",
            resolution: "name the device behind the bridge instead")
    }
}

extension Refusal {
    /// `held`: names every held function and who holds it, and says what to do about each.
    static func held(_ affected: [AffectedFunction], action: String) -> Refusal {
        let held = affected.filter(\.isHeld)
        let what = held.map { "\($0.bdf) (\($0.heldBy ?? ""))" }.joined(separator: "; ")
        var steps: [String] = []
        for function in held {
            if !function.holders.isEmpty {
                let who = function.holders.map(\.description).joined(separator: ", ")
                steps.append(
                    "stop the VM or process using \(function.bdf) (\(who)) or detach the device from it")
            }
            guard function.heldByDriver, let driver = function.driver else { continue }
            if function.role == .target {
                steps.append(
                    "\(function.bdf) is bound to \(driver), not VFIO; bind it to vfio-pci first: "
                        + "POST /gpus/\(function.bdf)/bind")
            } else {
                steps.append("unbind \(function.bdf) from \(driver) (or bind it to vfio-pci)")
            }
        }
        return Refusal(
            code: .held, message: "cannot \(action): held by \(what)",
            resolution: steps.joined(separator: "; "), holders: held)
    }
}

import Testing

@testable import Passthrough
@testable import PassthroughSimulator

/// The health watch's judgement of one look, without I/O.
@Suite("Health evaluator")
struct HealthEvaluatorTests {
    static func config(
        device: UInt16 = 0x2330, link: SimulatedFunction.Link = .init(generation: 5, width: 16)
    ) -> ConfigSpace {
        let function = SimulatedFunction(
            bdf: BDF("0000:c3:00.0")!, parent: nil, vendor: 0x10de, device: device, subsystemVendor: 0x10de,
            subsystemDevice: 0x16c1, classCode: 0x030200, link: link)
        return ConfigSpace(ConfigSpaceBuilder.configSpace(for: function).bytes)
    }

    static let awake = PowerState(state: "D0", runtimeStatus: "active", control: "auto")

    static func look(
        _ observation: HealthObservation, _ memory: HealthMemory = HealthMemory(), at ms: Int64 = 1000
    )
        -> (findings: [HealthFinding], memory: HealthMemory)
    {
        HealthEvaluator.evaluate(observation, memory: memory, nowMs: ms)
    }

    @Test("a device that answers at full link is fine, and its identity becomes the baseline")
    func healthy() {
        let (findings, memory) = Self.look(HealthObservation(power: Self.awake, config: Self.config()))
        #expect(findings.isEmpty)
        #expect(memory.baseline?.deviceID == 0x2330)
    }

    @Test("all-ones config space is a device off the bus, whatever the power state says")
    func allOnes() {
        let off = ConfigSpace([UInt8](repeating: 0xFF, count: 256))
        let (findings, _) = Self.look(HealthObservation(power: Self.awake, config: off))
        #expect(findings.map(\.reason) == [.allOnes])
        #expect(findings.first?.reason.status == .failed)
    }

    @Test("D3cold is reported without config space (it was not read)")
    func d3cold() {
        let cold = PowerState(state: "D3cold", runtimeStatus: "suspended", control: "auto")
        let (findings, _) = Self.look(HealthObservation(power: cold, config: nil))
        #expect(findings.map(\.reason) == [.d3cold])
    }

    @Test("a link below both ends' maximum is degraded; one limited by its slot is not")
    func link() {
        let slow = Self.config(
            link: .init(maxGeneration: 5, maxWidth: 16, currentGeneration: 1, currentWidth: 16))
        #expect(
            Self.look(HealthObservation(power: Self.awake, config: slow)).findings.map(\.reason) == [
                .linkDegraded
            ])
        let narrow = Self.config(
            link: .init(maxGeneration: 5, maxWidth: 16, currentGeneration: 5, currentWidth: 8))
        let detail = Self.look(HealthObservation(power: Self.awake, config: narrow)).findings.first?.detail
        #expect(detail == "link trained at 32 GT/s x8, capable of 32 GT/s x16")
        // A x16 GPU in a Gen4 x8 slot trains at 16 GT/s x8, as it should.
        let slotted = Self.config(
            link: .init(maxGeneration: 5, maxWidth: 16, currentGeneration: 4, currentWidth: 8))
        let inSlot = HealthObservation(
            power: Self.awake, config: slotted, upstreamMaxSpeed: 16, upstreamMaxWidth: 8)
        #expect(Self.look(inSlot).findings.isEmpty)
    }

    @Test("another device at the same address is an identity change")
    func identity() {
        let first = Self.look(HealthObservation(power: Self.awake, config: Self.config()))
        let (findings, _) = Self.look(
            HealthObservation(power: Self.awake, config: Self.config(device: 0x2335)), first.memory)
        #expect(findings.map(\.reason) == [.identityChanged])
        #expect(findings.first?.detail.contains("10de:2335") == true)
    }

    @Test("a rising AER counter is reported for five minutes, then forgotten; a steady one never")
    func aer() {
        let steady = HealthObservation(power: Self.awake, config: Self.config(), aer: [.aerCorrectable: 4])
        let first = Self.look(steady, at: 0)
        #expect(first.findings.isEmpty)
        let rose = HealthObservation(power: Self.awake, config: Self.config(), aer: [.aerCorrectable: 6])
        let second = Self.look(rose, first.memory, at: 5_000)
        #expect(second.findings.map(\.reason) == [.aerCorrectable])
        #expect(second.findings.first?.sinceMs == 5_000)
        let still = Self.look(rose, second.memory, at: 60_000)
        #expect(still.findings.first?.sinceMs == 5_000)
        #expect(Self.look(rose, still.memory, at: 5_000 + HealthEvaluator.aerHoldMs).findings.isEmpty)
    }

    @Test("the TOTAL line of an AER stats file is the count")
    func aerParse() {
        let text = "RxErr 0\nBadTLP 2\nBadDLLP 0\nTOTAL_ERR_COR 2\n"
        #expect(HealthObservation.aerTotal(text) == 2)
        #expect(HealthObservation.aerTotal("Undefined 0\n") == nil)
    }
}

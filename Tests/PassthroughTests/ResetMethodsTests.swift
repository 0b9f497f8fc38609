import Testing

@testable import Passthrough

@Suite struct ResetMethodsTests {
    @Test func parsesTheKernelsList() {
        #expect(ResetMethods.parse("flr pm bus\n") == ["flr", "pm", "bus"])
        #expect(ResetMethods.parse("bus") == ["bus"])
        #expect(ResetMethods.parse("device_specific acpi flr\n") == ["device_specific", "acpi", "flr"])
    }

    @Test func emptyMeansNoMethods() {
        #expect(ResetMethods.parse("").isEmpty)
        #expect(ResetMethods.parse("\n").isEmpty)
    }

    @Test func formatRoundTrips() {
        #expect(ResetMethods.format(["flr", "bus"]) == "flr bus")
        #expect(ResetMethods.parse(ResetMethods.format(["pm", "bus"])) == ["pm", "bus"])
    }
}

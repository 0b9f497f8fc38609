import Testing

@testable import Passthrough

@Suite struct LinkSpeedTests {
    @Test(arguments: [
        ("2.5 GT/s PCIe", 2.5), ("5.0 GT/s PCIe", 5.0), ("8.0 GT/s PCIe", 8.0),
        ("16.0 GT/s PCIe\n", 16.0), ("32.0 GT/s PCIe", 32.0), ("64.0 GT/s PCIe", 64.0),
        ("8 GT/s", 8.0), ("5 GT/s\n", 5.0), ("2.5 GT/s", 2.5),
    ])
    func sysfsSpeed(text: String, gigatransfers: Double) {
        #expect(LinkSpeed.parse(text) == gigatransfers)
    }

    @Test(arguments: [
        "Unknown", "Unknown\n", "", "\n", "GT/s", "fast GT/s", "16.0", "16.0 MB/s", "-8 GT/s", "nan GT/s",
    ])
    func unreadableSpeed(text: String) {
        #expect(LinkSpeed.parse(text) == nil)
    }

    @Test func speedCodes() {
        #expect(LinkSpeed.gigatransfersPerSecond(code: 1) == 2.5)
        #expect(LinkSpeed.gigatransfersPerSecond(code: 2) == 5)
        #expect(LinkSpeed.gigatransfersPerSecond(code: 3) == 8)
        #expect(LinkSpeed.gigatransfersPerSecond(code: 4) == 16)
        #expect(LinkSpeed.gigatransfersPerSecond(code: 5) == 32)
        #expect(LinkSpeed.gigatransfersPerSecond(code: 6) == 64)
        #expect(LinkSpeed.gigatransfersPerSecond(code: 0) == nil)
        #expect(LinkSpeed.gigatransfersPerSecond(code: 7) == nil)
        #expect(LinkSpeed.gigatransfersPerSecond(code: 15) == nil)
    }

    @Test func widths() {
        #expect(LinkSpeed.parseWidth("16\n") == 16)
        #expect(LinkSpeed.parseWidth("1") == 1)
        #expect(LinkSpeed.parseWidth("0\n") == 0)
        #expect(LinkSpeed.parseWidth("") == nil)
        #expect(LinkSpeed.parseWidth("x16") == nil)
        #expect(LinkSpeed.parseWidth("-1") == nil)
        #expect(LinkSpeed.parseWidth("1 6") == nil)
        #expect(LinkSpeed.parseWidth("99999999999999999999999") == nil)
    }

    @Test func pciLinkFromSysfs() {
        let link = PCILink(
            sysfsCurrentSpeed: "16.0 GT/s PCIe\n", currentWidth: "8\n", maxSpeed: "32.0 GT/s PCIe\n",
            maxWidth: "16\n")
        #expect(link == PCILink(currentSpeed: 16, currentWidth: 8, maxSpeed: 32, maxWidth: 16))
        let absent = PCILink(sysfsCurrentSpeed: "Unknown", currentWidth: nil, maxSpeed: nil, maxWidth: "4")
        #expect(absent == PCILink(currentSpeed: nil, currentWidth: nil, maxSpeed: nil, maxWidth: 4))
    }
}

import Testing

@testable import Passthrough

@Suite struct HexNumberTests {
    @Test(arguments: [("0x10de", UInt32(0x10de)), ("0X10DE", 0x10de), ("10de", 0x10de), ("0x0", 0)])
    func readsSysfsHex(text: String, value: UInt32) {
        #expect(HexNumber.parse(text, as: UInt32.self) == value)
    }

    /// What `UInt32(_:radix:)` alone would take: a sign, after the prefix or instead of it.
    @Test(arguments: ["0x+10de", "+10de", "-1", "0x-1", "0x", "", "0x 10de", "10de\n", "0xg", "0x0x1"])
    func refusesAnythingButDigits(text: String) {
        #expect(HexNumber.parse(text, as: UInt32.self) == nil)
    }

    @Test func refusesWhatDoesNotFit() {
        #expect(HexNumber.parse("0x10000", as: UInt16.self) == nil)
        #expect(HexNumber.parse("0xffff", as: UInt16.self) == 0xffff)
    }
}

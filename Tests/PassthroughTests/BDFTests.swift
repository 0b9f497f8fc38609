import Passthrough
import Testing

@Suite("BDF validation")
struct BDFTests {
    @Test("well-formed addresses parse and print in the kernel's spelling")
    func wellFormed() throws {
        let bdf = try #require(BDF("0009:01:00.0"))
        #expect(bdf.domain == 9 && bdf.bus == 1 && bdf.device == 0 && bdf.function == 0)
        #expect(bdf.description == "0009:01:00.0")
        #expect(BDF("ABCD:EF:1F.7")?.description == "abcd:ef:1f.7")
        #expect(BDF("0000:c3:00.0")?.description == "0000:c3:00.0")
    }

    @Test(
        "anything else is rejected",
        arguments: [
            "", "0000:01:00", "0000:01:00.8", "0000:01:20.0", "000:01:00.0", "00000:01:00.0", "0000:001:00.0",
            "0000-01-00.0", "0000:01:00.0 ", " 0000:01:00.0", "0000:01:00.0\n", "0000:01:00.0/",
            "g000:01:00.0",
            "0000:01:00.a", "0000:0x:00.0", "..", "../../etc/passwd", "0000:01:00.0/../../..",
            "0000%3A01%3A00.0", "0000:01:00%2E0", "..%2F..%2Fetc", "0000:01:00.0\0", "+000:01:00.0",
            "０000:01:00.0", "0000:01:00.-1", "*",
        ])
    func rejected(_ text: String) {
        #expect(BDF(text) == nil)
    }

    @Test("ordering is numeric: domain, bus, device, function")
    func ordering() throws {
        let addresses = ["0009:01:00.0", "0000:c3:00.0", "0000:01:00.1", "0000:01:00.0", "0008:01:00.0"]
        let sorted = addresses.compactMap { BDF($0) }.sorted().map(\.description)
        #expect(sorted == ["0000:01:00.0", "0000:01:00.1", "0000:c3:00.0", "0008:01:00.0", "0009:01:00.0"])
    }
}

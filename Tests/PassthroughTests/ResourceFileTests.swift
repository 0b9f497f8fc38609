import Testing

@testable import Passthrough

@Suite struct ResourceFileTests {
    /// An endpoint with SR-IOV configured: 6 BAR lines, the ROM, 6 VF BAR lines.
    static let endpoint = """
        0x00000000fa000000 0x00000000faffffff 0x0000000000040200
        0x0000000000000000 0x0000000000000000 0x0000000000000000
        0x0000380000000000 0x00003807ffffffff 0x000000000014220c
        0x0000000000000000 0x0000000000000000 0x0000000000000000
        0x0000380800000000 0x0000380801ffffff 0x000000000014220c
        0x0000000000000000 0x0000000000000000 0x0000000000000000
        0x00000000fb000000 0x00000000fb07ffff 0x0000000000046200
        0x0000000000000000 0x0000000000000000 0x0000000000000000
        0x0000000000000000 0x0000000000000000 0x0000000000000000
        0x0000000000000000 0x0000000000000000 0x0000000000000000
        0x0000000000000000 0x0000000000000000 0x0000000000000000
        0x0000000000000000 0x0000000000000000 0x0000000000000000
        0x0000000000000000 0x0000000000000000 0x0000000000000000

        """

    @Test func realisticEndpoint() throws {
        let bars = try ResourceFile.bars(Self.endpoint)
        #expect(
            bars == [
                BAR(index: 0, start: 0xFA00_0000, size: 16 << 20, is64Bit: false, prefetchable: false),
                BAR(index: 2, start: 0x3800_0000_0000, size: 32 << 30, is64Bit: true, prefetchable: true),
                BAR(index: 4, start: 0x3808_0000_0000, size: 32 << 20, is64Bit: true, prefetchable: true),
            ])
    }

    @Test func allLinesIncludingROM() throws {
        let lines = try ResourceFile.lines(Self.endpoint)
        #expect(lines.count == 13)
        #expect(lines[6] == ResourceFile.Line(start: 0xFB00_0000, end: 0xFB07_FFFF, flags: 0x46200))
        #expect(lines[6].size == 512 << 10)
        #expect(lines[1].size == 0)
        #expect(lines[2].flags & ResourceFile.memoryFlag != 0)
    }

    @Test func withoutTrailingNewlineAndWithShortHex() throws {
        let text = """
            0xfa000000 0xfaffffff 0x40200
            0x0 0x0 0x0
            0x0 0x0 0x0
            0x0 0x0 0x0
            0x0 0x0 0x0
            0xe000 0xe07f 0x40101
            0x0 0x0 0x0
            """
        let bars = try ResourceFile.bars(text)
        #expect(bars.map(\.index) == [0, 5])
        // An I/O BAR is reported too; its flags carry IORESOURCE_IO, not MEM_64.
        #expect(bars[1] == BAR(index: 5, start: 0xE000, size: 0x80, is64Bit: false, prefetchable: false))
    }

    @Test func emptyFileIsTruncated() {
        #expect(throws: ResourceFileError.truncated(lineCount: 0)) { try ResourceFile.bars("") }
        #expect(throws: ResourceFileError.truncated(lineCount: 0)) { try ResourceFile.bars("\n") }
        let three = Self.endpoint.split(separator: "\n").prefix(3).joined(separator: "\n")
        #expect(throws: ResourceFileError.truncated(lineCount: 3)) { try ResourceFile.bars(three) }
    }

    @Test(arguments: [
        "0x00000000fa000000 0x00000000faffffff",
        "0x00000000fa000000 0x00000000faffffff 0x0000000000040200 0x0",
        "00000000fa000000 00000000faffffff 0000000000040200",
        "0xg0000000fa000000 0x00000000faffffff 0x0000000000040200",
        "0x 0x1 0x2",
        "0x10000000000000000 0x10000000000000000 0x0",
        "garbage",
        "-0x1 0x1 0x1",
        // Found with the resource-file fuzz target's read-one-way check: Swift's integer parsing
        // takes a sign, so these read as 1 and 0.
        "0x+1 0x1 0x1",
        "0x1 0x-0 0x1",
    ])
    func malformedLine(line: String) {
        let text = line + "\n" + Self.endpoint
        #expect(throws: ResourceFileError.malformedLine(line: 0, text: line)) { try ResourceFile.bars(text) }
    }

    @Test func malformedLineInTheMiddleIsReportedByIndex() {
        var rows = Self.endpoint.split(separator: "\n").map(String.init)
        rows[9] = "0x0 0x0"
        #expect(throws: ResourceFileError.malformedLine(line: 9, text: "0x0 0x0")) {
            try ResourceFile.bars(rows.joined(separator: "\n"))
        }
    }

    @Test func blankLineInTheMiddleIsMalformed() {
        var rows = Self.endpoint.split(separator: "\n").map(String.init)
        rows[3] = ""
        #expect(throws: ResourceFileError.malformedLine(line: 3, text: "")) {
            try ResourceFile.bars(rows.joined(separator: "\n"))
        }
    }

    @Test func endBeforeStartIsInvalid() {
        var rows = Self.endpoint.split(separator: "\n").map(String.init)
        rows[0] = "0x00000000fa000000 0x00000000f9ffffff 0x0000000000040200"
        #expect(throws: ResourceFileError.invalidRange(line: 0, start: 0xFA00_0000, end: 0xF9FF_FFFF)) {
            try ResourceFile.bars(rows.joined(separator: "\n"))
        }
    }

    @Test func wholeAddressSpaceDoesNotTrap() {
        var rows = Self.endpoint.split(separator: "\n").map(String.init)
        rows[1] = "0x0000000000000000 0xffffffffffffffff 0x0000000000000200"
        #expect(throws: ResourceFileError.invalidRange(line: 1, start: 0, end: UInt64.max)) {
            try ResourceFile.bars(rows.joined(separator: "\n"))
        }
    }

    @Test func zeroStartNonZeroEndIsUsed() throws {
        // Only 0..0 means unused; a resource from 0 to 0xfff is 4 KiB.
        var rows = Self.endpoint.split(separator: "\n").map(String.init)
        rows[1] = "0x0000000000000000 0x0000000000000fff 0x0000000000040200"
        let bars = try ResourceFile.bars(rows.joined(separator: "\n"))
        #expect(bars.map(\.index) == [0, 1, 2, 4])
        #expect(bars[1].size == 0x1000)
    }

    /// Found by the resource-file fuzz target's own check splitting by Characters: a file of blank
    /// lines, one ending in CRLF, has no lines, and as BARs it is truncated.
    @Test func blankLinesWithCRLF() throws {
        let text = " \r\n \n \n  \n \n  \n   "
        #expect(try ResourceFile.lines(text).isEmpty)
        #expect(throws: ResourceFileError.truncated(lineCount: 0)) { try ResourceFile.bars(text) }
    }
}

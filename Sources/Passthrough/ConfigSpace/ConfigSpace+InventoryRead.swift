#if canImport(Glibc)
    import Glibc
#endif

extension ConfigSpace {
    /// How much of each designated vendor-specific capability the inventory reads: its headers and
    /// the registers it looks at (CXL Range 1 Size Low at +0x1C, NVIDIA's capability bitmap at +0xA).
    static let inventoryDVSECLength = 0x40

    /// A function's config space as the inventory needs it, reading only what it looks at: the
    /// first 256 bytes, the header dword of each extended capability along the chain, and the
    /// first 64 bytes of each DVSEC. The kernel reads config space a dword at a time, and in a guest
    /// each dword traps to the hypervisor (reference perf-facts: ~25 µs a dword), so reading all
    /// 4 KiB costs 1024 of them per function where this reads about a hundred. Bytes not read stay
    /// zero, which the capability walks treat as absent; nothing else reads them.
    ///
    /// Empty when `config` cannot be opened or read (the function is gone); 256 bytes or fewer for
    /// a conventional function (or an all-ones header, which has no chain to follow).
    public static func readForInventory(_ root: SysfsRoot, _ relative: String) -> ConfigSpace {
        readForInventory(fd: open(root.absolute(relative), O_RDONLY | O_CLOEXEC)) { offset, count in
            root.configReads?.record(file: relative, offset: offset, count: count)
        }
    }

    /// `readForInventory` of the `config` file of a device's folder held open.
    public static func readForInventory(_ folder: borrowing SysfsFolder) -> ConfigSpace {
        let meter = folder.configReads
        let relative = folder.relative
        return readForInventory(fd: folder.openFile("config")) { offset, count in
            meter?.record(folder: relative, offset: offset, count: count)
        }
    }

    /// Reads from `fd` as above and closes it; -1 reads as empty. `recording` is told of each read.
    private static func readForInventory(fd: Int32, recording: (_ offset: Int, _ count: Int) -> Void)
        -> ConfigSpace
    {
        guard fd >= 0 else { return ConfigSpace([]) }
        defer { close(fd) }
        func read(_ count: Int, at offset: Int) -> [UInt8] {
            var buffer = [UInt8](repeating: 0, count: count)
            let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
            recording(offset, got)
            return got > 0 ? Array(buffer[0..<got]) : []
        }
        let head = read(conventionalSize, at: 0)
        guard head.count == conventionalSize, !ConfigSpace(head).isAllOnes else { return ConfigSpace(head) }
        var image = head + [UInt8](repeating: 0, count: extendedSize - conventionalSize)
        var offset = conventionalSize
        var seen: Set<Int> = []
        while offset >= conventionalSize, offset + 4 <= extendedSize, seen.insert(offset).inserted {
            let dword = read(4, at: offset)
            // A 256-byte file (no extended space) ends the walk before anything is added.
            guard dword.count == 4 else {
                return offset == conventionalSize ? ConfigSpace(head) : ConfigSpace(image)
            }
            image.replaceSubrange(offset..<offset + 4, with: dword)
            let header = ConfigSpace(dword).read32(at: 0) ?? 0
            guard header != 0, header != 0xFFFF_FFFF else { break }
            if UInt16(truncatingIfNeeded: header) == ExtendedCapability.designatedVendorSpecific {
                let body = read(min(inventoryDVSECLength, extendedSize - offset), at: offset)
                image.replaceSubrange(offset..<offset + body.count, with: body)
            }
            offset = Int((header >> 20) & 0xFFC)
        }
        return ConfigSpace(image)
    }
}

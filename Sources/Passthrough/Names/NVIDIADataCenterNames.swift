/// Names of NVIDIA data-centre GPUs that an older pci.ids lacks (Debian 12's pci.ids 2023.04.11 knows
/// no H200, GH200 or Blackwell part), used only when the pci.ids file libpci reads does not name the
/// device.
///
/// Every entry is the device line of 10de (NVIDIA Corporation) in the public pci.ids database, copied
/// as it stands in pci.ids version 2026.08.22 (snapshot of 2026-08-22 03:15:01), so that a name reads
/// the same once the system's pci.ids is updated. Only named data-centre parts are here: no reserved
/// or codename-only IDs, no consumer or workstation GPUs.
public enum NVIDIADataCenterNames {
    public static let vendorID: UInt16 = 0x10de

    /// Device ID to its pci.ids name. One entry per line, each with the pci.ids version it was copied from.
    public static let table: [UInt16: String] = [
        // Hopper: H100
        0x2313: "GH100 [H100 CNX]",  // pci.ids 2026.08.22
        0x2321: "GH100 [H100L 94GB]",  // pci.ids 2026.08.22
        0x2330: "GH100 [H100 SXM5 80GB]",  // pci.ids 2026.08.22
        0x2331: "GH100 [H100 PCIe]",  // pci.ids 2026.08.22
        0x2336: "GH100 [H100]",  // pci.ids 2026.08.22
        0x2337: "GH100 [H100 SXM5 64GB]",  // pci.ids 2026.08.22
        0x2338: "GH100 [H100 SXM5 96GB]",  // pci.ids 2026.08.22
        0x2339: "GH100 [H100 SXM5 94GB]",  // pci.ids 2026.08.22
        0x233d: "GH100 [H100 96GB]",  // pci.ids 2026.08.22
        // Hopper: H200
        0x2335: "GH100 [H200 SXM 141GB]",  // pci.ids 2026.08.22
        0x233b: "GH100 [H200 NVL]",  // pci.ids 2026.08.22
        // Grace Hopper: GH200
        0x2342: "GH100 [GH200 120GB / 480GB]",  // pci.ids 2026.08.22
        0x2348: "GH100 [GH200 144G HBM3e]",  // pci.ids 2026.08.22
        // Blackwell: B100, B200, GB200
        0x2901: "GB100 [B200]",  // pci.ids 2026.08.22
        0x2909: "GB100 [HGX B200 168GB]",  // pci.ids 2026.08.22
        0x2920: "GB100 [TS4 / B100]",  // pci.ids 2026.08.22
        0x2941: "GB100 [HGX GB200]",  // pci.ids 2026.08.22
        0x29bc: "GB102 [B100]",  // pci.ids 2026.08.22
        // Blackwell Ultra: B300, GB300 (0x3182 is the simulated host's "Blackwell-Next" GPU)
        0x3182: "GB110 [B300 SXM6 AC]",  // pci.ids 2026.08.22
        0x31a1: "GB110 [GB300 MaxQ]",  // pci.ids 2026.08.22
        0x31c2: "GB110 [GB300]",  // pci.ids 2026.08.22
        0x31c3: "GB110 [GB300]",  // pci.ids 2026.08.22
    ]
}

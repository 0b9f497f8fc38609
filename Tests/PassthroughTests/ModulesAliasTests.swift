import Passthrough
import Testing

@Suite("modules.alias")
struct ModulesAliasTests {
    let gh200 = PCIIdentity(
        vendorID: 0x10de, deviceID: 0x2342, subsystemVendorID: 0x10de, subsystemDeviceID: 0x16b0,
        classCode: 0x03_0200)

    @Test("the VFIO modalias is the kernel's: 8-digit uppercase IDs, 2-digit class bytes")
    func modalias() {
        #expect(gh200.vfioModalias == "vfio_pci:v000010DEd00002342sv000010DEsd000016B0bc03sc02i00")
    }

    @Test("parses alias lines, skips comments, blanks and other lines")
    func parse() {
        let aliases = ModulesAlias(
            text: """
                # Aliases extracted from modules themselves.

                alias vfio_pci:v000010DEd00002342sv*sd*bc*sc*i* nvgrace_gpu_vfio_pci
                softdep nvidia pre: ecdh_generic
                alias broken
                alias\tpci:v00008086d*sv*sd*bc02sc00i* \te1000e
                """)
        #expect(aliases.entries.map(\.module) == ["nvgrace_gpu_vfio_pci", "e1000e"])
        #expect(aliases.entries.first?.pattern.text == "vfio_pci:v000010DEd00002342sv*sd*bc*sc*i*")
    }

    @Test("a realistic nvgrace line matches the GH200, not the H100; vfio-pci's catch-all is no variant")
    func variant() {
        let aliases = ModulesAlias(text: demoModulesAlias)
        #expect(aliases.variantDriver(for: gh200) == "nvgrace_gpu_vfio_pci")
        let h100 = PCIIdentity(vendorID: 0x10de, deviceID: 0x2331, classCode: 0x03_0200)
        #expect(aliases.variantDriver(for: h100) == nil)
        #expect(aliases.modules(matching: h100.vfioModalias, prefix: ModulesAlias.vfioPrefix) == ["vfio_pci"])
        // The `pci:` alias of nvidia does not make it a VFIO variant.
        #expect(!aliases.modules(matching: gh200.vfioModalias, prefix: "vfio_pci:").contains("nvidia"))
    }

    @Test("the most specific of several matches wins; module dashes become underscores")
    func specificity() {
        let aliases = ModulesAlias(
            text: """
                alias vfio_pci:v000010DEd*sv*sd*bc03sc*i* nvidia-generic-vfio-pci
                alias vfio_pci:v000010DEd00002342sv*sd*bc*sc*i* nvgrace-gpu-vfio-pci
                alias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci
                """)
        #expect(aliases.variantDriver(for: gh200) == "nvgrace_gpu_vfio_pci")
        #expect(
            aliases.modules(matching: gh200.vfioModalias)
                == ["nvgrace-gpu-vfio-pci", "nvidia-generic-vfio-pci", "vfio_pci"])
        let other = PCIIdentity(vendorID: 0x10de, deviceID: 0x2941, classCode: 0x03_0200)
        #expect(aliases.variantDriver(for: other) == "nvidia_generic_vfio_pci")
    }

    @Test("load reads a file; a missing file is nil")
    func load() throws {
        let folder = try TestFolder()
        try writeText(folder.path + "/modules.alias", demoModulesAlias)
        let loaded = try #require(ModulesAlias.load(path: folder.path + "/modules.alias"))
        #expect(loaded == ModulesAlias(text: demoModulesAlias))
        #expect(ModulesAlias.load(path: folder.path + "/absent") == nil)
    }

    @Test("glob patterns: star backtracking, question marks, classes, literal brackets")
    func glob() {
        #expect(GlobPattern("a*b*c").matches("axxbyybc"))
        #expect(!GlobPattern("a*b*c").matches("axxbyybd"))
        #expect(GlobPattern("v?d*").matches("v1d"))
        #expect(!GlobPattern("v?d*").matches("vd"))
        #expect(GlobPattern("d000067[0-9A-F]*").matches("d0000670A"))
        #expect(!GlobPattern("d000067[!0-9]").matches("d0000675"))
        #expect(GlobPattern("x[").matches("x["))
        #expect(GlobPattern("**").matches(""))
        #expect(GlobPattern("vfio_pci:v*d*sv*sd*bc*sc*i*").wildcardCount == 7)
    }
}

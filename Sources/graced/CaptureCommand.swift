import ArgumentParser
import Passthrough

#if canImport(Glibc)
    import Glibc
#endif

/// `graced capture`: writes the host's PCI view as JSON, for bug reports and test fixtures, and for
/// `graced serve --simulate --from-capture FILE` to replay.
struct CaptureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Write this host's PCI view (sysfs attributes, links, config space) as JSON.",
        discussion:
            "Reads every function under ROOT/bus/pci/devices, the IOMMU groups and the drivers; writes "
            + "nothing to sysfs. Serial numbers are left out: the Device Serial Number in config space "
            + "reads as zeros and vpd is never read. Replay the file with "
            + "`graced serve --simulate --from-capture FILE`.")

    @Option(help: ArgumentHelp("The sysfs root to read.", valueName: "root"))
    var sysfs = "/sys"

    @Option(help: ArgumentHelp("Write the capture here instead of to stdout.", valueName: "file"))
    var out: String?

    @Option(
        name: .customLong("gpu-memory"),
        help: ArgumentHelp(
            "Firmware device memory of an nvgrace GPU, recorded in the capture (sysfs does not show it). Repeatable.",
            valueName: "bdf=base,size"))
    var gpuMemory: [String] = []

    func validate() throws {
        for entry in gpuMemory where FirmwareMemoryArgument(entry) == nil {
            throw ValidationError(
                "--gpu-memory takes BDF=BASE,SIZE with hex or decimal numbers, e.g. 0009:01:00.0=0x400000000000,0x1800000000 (got \(entry))"
            )
        }
    }

    func run() throws {
        let root = SysfsRoot(path: sysfs)
        guard root.resolve("bus/pci/devices") != nil else {
            throw CaptureFailure(message: "\(sysfs) has no bus/pci/devices: not a sysfs tree")
        }
        var memory: [BDF: FirmwareMemory] = [:]
        for argument in gpuMemory.compactMap(FirmwareMemoryArgument.init) {
            memory[argument.bdf] = argument.entry
        }
        // The running kernel's release describes only the running kernel's /sys.
        let live = root.resolve("") == "/sys"
        let writer = HostCaptureWriter(
            root: root, kernelRelease: live ? HostCaptureWriter.runningKernelRelease() : nil,
            firmwareMemory: memory)
        let capture = writer.capture()
        let bytes = capture.encoded()
        if let out {
            try writeFile(out, bytes)
            let count = capture.devices.count
            note("captured \(count) PCI function\(count == 1 ? "" : "s") from \(sysfs) into \(out)")
        } else {
            try writeAll(STDOUT_FILENO, bytes, name: "stdout")
        }
    }
}

/// A capture that could not be written or read; ArgumentParser prints the message.
struct CaptureFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// The whole file (a capture to replay).
func readCaptureFile(_ path: String) throws -> HostCapture {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
        throw CaptureFailure(message: "cannot open \(path): \(KernelError(code: errno, path: path).message)")
    }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        guard count >= 0 else {
            throw CaptureFailure(
                message: "cannot read \(path): \(KernelError(code: errno, path: path).message)")
        }
        if count == 0 { break }
        bytes += chunk[0..<count]
    }
    do {
        return try HostCapture.decode(bytes)
    } catch {
        throw CaptureFailure(message: "\(path): \(error)")
    }
}

private func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
        throw CaptureFailure(
            message: "cannot create \(path): \(KernelError(code: errno, path: path).message)")
    }
    defer { close(fd) }
    try writeAll(fd, bytes, name: path)
}

private func writeAll(_ fd: Int32, _ bytes: [UInt8], name: String) throws {
    var done = 0
    while done < bytes.count {
        let count = bytes.withUnsafeBytes { raw in write(fd, raw.baseAddress! + done, raw.count - done) }
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else {
            throw CaptureFailure(
                message: "cannot write \(name): \(KernelError(code: errno, path: name).message)")
        }
        done += count
    }
}

private func note(_ text: String) {
    let line = Array((text + "\n").utf8)
    _ = line.withUnsafeBytes { raw in write(STDERR_FILENO, raw.baseAddress, raw.count) }
}

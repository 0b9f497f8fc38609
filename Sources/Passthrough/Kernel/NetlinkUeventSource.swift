import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The kernel's uevents for PCI functions, read from a NETLINK_KOBJECT_UEVENT socket bound to the
/// kernel's multicast group (1; udev's re-broadcasts go to group 2 and are not read). Receiving needs
/// no privilege; the kernel sends uevents to sockets in the initial network namespace only, so in a
/// container with its own network namespace `start` succeeds and nothing arrives (periodic rescans
/// then still see changes).
///
/// One dedicated thread blocks in `poll` on the socket and on a pipe that `stop` writes to; idle, it
/// costs nothing. Datagrams that arrive together are parsed and delivered as one batch.
public final class NetlinkUeventSource: DeviceEventSource {
    /// Linux's constants: `AF_NETLINK`, `NETLINK_KOBJECT_UEVENT`, the kernel's uevent group.
    static let addressFamily: Int32 = 16
    static let protocolNumber: Int32 = 15
    static let kernelGroup: UInt32 = 1
    /// Large enough for a bus rescan's burst (each uevent is a few hundred bytes); asked with
    /// SO_RCVBUFFORCE (root) and then SO_RCVBUF (capped by net.core.rmem_max).
    static let receiveBufferBytes: Int32 = 8 << 20

    /// `struct sockaddr_nl`, which Swift's Glibc module does not import.
    struct NetlinkAddress {
        var family: UInt16 = UInt16(NetlinkUeventSource.addressFamily)
        var pad: UInt16 = 0
        var portID: UInt32 = 0
        var groups: UInt32 = 0
    }

    private struct Running: Sendable {
        let socket: Int32
        let wakeRead: Int32
        let wakeWrite: Int32
        let finished: DispatchSemaphore
    }

    private let running = Mutex<Running?>(nil)

    public init() {}

    deinit { stop() }

    public func start(_ handler: @escaping @Sendable (DeviceEventDelivery) -> Void) throws(KernelError) {
        let fd = socket(
            Self.addressFamily, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Self.protocolNumber
        )
        guard fd >= 0 else { throw KernelError(code: errno, path: "netlink:uevent") }
        var size = Self.receiveBufferBytes
        let length = socklen_t(MemoryLayout<Int32>.size)
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, length) != 0 {
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, length)
        }
        var address = NetlinkAddress(groups: Self.kernelGroup)
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<NetlinkAddress>.size))
            }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw KernelError(code: code, path: "netlink:uevent")
        }
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else {
            let code = errno
            close(fd)
            throw KernelError(code: code, path: "netlink:uevent")
        }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        let started = Running(
            socket: fd, wakeRead: ends[0], wakeWrite: ends[1], finished: DispatchSemaphore(value: 0))
        let accepted = running.withLock { running -> Bool in
            guard running == nil else { return false }
            running = started
            return true
        }
        guard accepted else {
            close(fd)
            close(ends[0])
            close(ends[1])
            throw KernelError(.resourceBusy, path: "netlink:uevent")
        }
        DispatchQueue(label: "graced.uevents").async {
            Self.loop(started, handler)
            started.finished.signal()
        }
    }

    public func stop() {
        guard
            let current = running.withLock({ running -> Running? in
                defer { running = nil }
                return running
            })
        else { return }
        var one: UInt8 = 1
        _ = write(current.wakeWrite, &one, 1)
        current.finished.wait()
        close(current.socket)
        close(current.wakeRead)
        close(current.wakeWrite)
    }

    /// Waits for datagrams until the pipe says stop; each wake-up drains what is queued into one batch.
    private static func loop(_ running: Running, _ handler: @Sendable (DeviceEventDelivery) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            var fds = [
                pollfd(fd: running.socket, events: Int16(POLLIN), revents: 0),
                pollfd(fd: running.wakeRead, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&fds, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[1].revents != 0 { return }
            var events: [DeviceEvent] = []
            var overflowed = false
            while true {
                var sender = NetlinkAddress()
                var senderLength = socklen_t(MemoryLayout<NetlinkAddress>.size)
                let count = buffer.withUnsafeMutableBytes { raw in
                    withUnsafeMutablePointer(to: &sender) { pointer in
                        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            recvfrom(
                                running.socket, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT), $0,
                                &senderLength)
                        }
                    }
                }
                if count < 0 {
                    if errno == EINTR { continue }
                    if errno == ENOBUFS { overflowed = true; continue }
                    break
                }
                // Only the kernel (port 0) speaks for the kernel.
                guard sender.portID == 0, let event = UeventMessage.parse(buffer[0..<count]) else { continue }
                events.append(event)
            }
            if overflowed { handler(.overflow) }
            if !events.isEmpty { handler(.events(events)) }
        }
    }
}

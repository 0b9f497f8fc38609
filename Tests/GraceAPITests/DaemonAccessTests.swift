import FoundationEssentials
import GraceTestSupport
import Synchronization
import Testing

@testable import GraceAPI
@testable import GraceHTTP
@testable import Passthrough

#if canImport(Glibc)
    import Glibc
#endif

/// graced the binary: what it refuses to start with, its socket's life, token reloads, and a fresh
/// client's answer when the descriptors run short.
@Suite("Daemon access", .serialized)
struct DaemonAccessTests {
    func folder() throws -> String {
        makeTemporaryFolder("/tmp/graced-daemon-XXXXXX")
    }

    func run(_ arguments: [String], in folder: String) async throws -> (status: Int32, output: String) {
        try await offPool { try ChildProcess.run([GracedProcess.binary] + arguments, in: folder) }
    }

    @Test("TCP without a token file, or --no-auth off loopback, is refused at start with what to do")
    func refusesOpenTCP() async throws {
        let folder = try folder()
        let open = try await run(
            [
                "--simulate", "--listen", "127.0.0.1:0", "--tokens", folder + "/none", "--db",
                folder + "/a.sqlite",
            ],
            in: folder)
        #expect(open.status != 0)
        #expect(open.output.contains("graced token create") && open.output.contains("without authentication"))
        let wide = try await run(
            ["--simulate", "--listen", "0.0.0.0:0", "--no-auth", "--db", folder + "/b.sqlite"], in: folder)
        #expect(wide.status == 64, "\(wide.output)")
        #expect(wide.output.contains("--no-auth is only for loopback"))
        let priced = try await run(
            [
                "--simulate-config-dword-us", "25", "--listen", "127.0.0.1:0", "--no-auth", "--db",
                folder + "/c.sqlite",
            ],
            in: folder)
        #expect(priced.status == 64, "\(priced.output)")
        #expect(priced.output.contains("add --simulate"))
    }

    @Test("the socket is 0660 from the start, the database 0600, and both socket and folder tidy at exit")
    func socketLifecycle() async throws {
        let folder = try folder()
        let socket = folder + "/run/graced.sock"
        let database = folder + "/state/graced.sqlite"
        let pid = try ChildProcess.spawn(
            [
                GracedProcess.binary, "--simulate", "--listen", "unix:" + socket, "--db", database,
                "--rescan-interval", "0",
            ],
            output: folder + "/graced.log")
        let client = RawHTTPClient(unixPath: socket)
        var answered = false
        for _ in 0..<300 where !answered {
            answered = (await offPool { try? client.request("GET", "/healthz") })?.status == 200
            if !answered { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(answered, "\(ChildProcess.read(folder + "/graced.log"))")
        var status = stat()
        #expect(stat(socket, &status) == 0 && status.st_mode & 0o777 == 0o660)
        #expect(stat(database, &status) == 0 && status.st_mode & 0o777 == 0o600)
        #expect(stat(folder + "/state", &status) == 0 && status.st_mode & 0o777 == 0o700)
        // No temporary bind folder is left beside the socket.
        let entries = SysfsRoot(path: folder).list("run")
        #expect(entries == ["graced.sock"], "\(entries)")
        kill(pid, SIGTERM)
        #expect(await offPool { ChildProcess.wait(pid) } == 0)
        #expect(access(socket, F_OK) != 0, "the socket is removed at exit")
    }

    @Test("a token created while graced runs works after SIGHUP; a revoked one stops working")
    func sighupReloadsTokens() async throws {
        let folder = try folder()
        let tokens = folder + "/tokens"
        let first = try await run(
            ["token", "create", "--tokens", tokens, "--name", "first", "--role", "viewer"], in: folder)
        #expect(first.status == 0)
        let firstToken = try #require(first.output.split(separator: "\n").first { $0.hasPrefix("grace_") })
        let daemon = try GracedProcess(
            database: folder + "/graced.sqlite", logPath: folder + "/graced.log",
            access: ["--tokens", tokens])
        defer { daemon.killInTeardown(SIGTERM) }
        try await daemon.waitUntilServing()
        let client = daemon.client
        func status(_ token: Substring) async -> Int? {
            await offPool {
                try? client.request("GET", "/gpus", headers: [("Authorization", "Bearer \(token)")])
            }?
            .status
        }
        #expect(await status(firstToken) == 200)
        let second = try await run(
            ["token", "create", "--tokens", tokens, "--name", "second", "--role", "viewer"], in: folder)
        let secondToken = try #require(second.output.split(separator: "\n").first { $0.hasPrefix("grace_") })
        #expect(await status(secondToken) == 401)
        #expect(try await run(["token", "revoke", "--tokens", tokens, "first"], in: folder).status == 0)
        daemon.signal(SIGHUP)
        var reloaded = false
        for _ in 0..<100 where !reloaded {
            reloaded = await status(secondToken) == 200
            if !reloaded { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(reloaded)
        #expect(await status(firstToken) == 401)
        #expect(
            !daemon.log.contains(String(secondToken.dropFirst(6).prefix(16))), "tokens never reach the log")
    }

    @Test(
        "a token file graced refuses on SIGHUP refuses every token (it may be the edit that revokes one) until a valid one is loaded"
    )
    func refusedReloadFailsClosed() async throws {
        let folder = try folder()
        let tokens = folder + "/tokens"
        let created = try await run(
            ["token", "create", "--tokens", tokens, "--name", "kept", "--role", "viewer"], in: folder)
        let token = try #require(created.output.split(separator: "\n").first { $0.hasPrefix("grace_") })
        let daemon = try GracedProcess(
            database: folder + "/graced.sqlite", logPath: folder + "/graced.log",
            access: ["--tokens", tokens])
        defer { daemon.killInTeardown(SIGTERM) }
        try await daemon.waitUntilServing()
        let client = daemon.client
        func status() async -> Int? {
            await offPool {
                try? client.request("GET", "/gpus", headers: [("Authorization", "Bearer \(token)")])
            }?
            .status
        }
        #expect(await status() == 200)
        // The edited file lands with mode 0644: graced refuses it, and with it every token.
        chmod(tokens, 0o644)
        daemon.signal(SIGHUP)
        try await waitFor(seconds: 30) { await status() == 401 }
        #expect(await status() == 401)
        chmod(tokens, 0o600)
        daemon.signal(SIGHUP)
        try await waitFor(seconds: 30) { await status() == 200 }
        #expect(await status() == 200)
    }

    @Test(
        "a socket folder graced makes itself is 0755 whatever its umask, so the socket's group can reach it")
    func socketFolderMode() async throws {
        let folder = try folder()
        let socket = folder + "/s/g.sock"
        let daemon = try GracedProcess(
            database: folder + "/graced.sqlite", logPath: folder + "/graced.log",
            access: ["--no-auth", "--listen", "unix:\(socket)"],
            launcher: ["/bin/sh", "-c", "umask 077 && exec \"$@\"", "sh"])
        defer { daemon.killInTeardown(SIGTERM) }
        try await daemon.waitUntilServing()
        var status = stat()
        #expect(stat(folder + "/s", &status) == 0)
        #expect(status.st_mode & 0o777 == 0o755, "mode \(String(status.st_mode & 0o777, radix: 8))")
        #expect(access(socket, F_OK) == 0)
    }

    @Test("a body value echoed in a problem is bounded, whatever its size")
    func echoIsBounded() async throws {
        let service = try await RunningService.start()
        let huge = String(repeating: "x", count: 60_000)
        let answer = try await service.send(
            "POST", "/gpus/0009:01:00.0/reset", body: #"{"method": "\#(huge)"}"#)
        #expect(answer.status == 400)
        #expect(answer.text.utf8.count < 2000, "\(answer.text.utf8.count) bytes")
    }

    @Test(
        "with 150 slow connections under `ulimit -n 128` a fresh client is answered within 2 s (a refusal or its answer), not left hanging"
    )
    func descriptorExhaustion() async throws {
        let folder = try folder()
        let daemon = try GracedProcess(
            database: folder + "/graced.sqlite", logPath: folder + "/graced.log",
            access: ["--no-auth", "--header-timeout", "60", "--max-connections-per-client", "0"],
            launcher: ["/bin/sh", "-c", "ulimit -n 128 && exec \"$@\"", "sh"])
        defer { daemon.killInTeardown(SIGTERM) }
        try await daemon.waitUntilServing()
        let client = daemon.client
        // Each sends half a request head and then nothing.
        let slow = try await offPool { () throws -> [Int32] in
            var sockets: [Int32] = []
            for _ in 0..<150 {
                guard let fd = try? client.connectSocket() else { break }
                try? client.sendAll(fd, Array("GET /gpus HTTP/1.1\r\nHost: 127.0.0.1\r\n".utf8))
                sockets.append(fd)
            }
            return sockets
        }
        defer { slow.forEach { close($0) } }
        #expect(slow.count >= 100)
        let clock = ContinuousClock()
        let start = clock.now
        let fresh = await offPool { try? client.request("GET", "/healthz") }
        let waited = start.duration(to: clock.now)
        #expect(waited < .seconds(2), "waited \(waited)")
        #expect([200, 503].contains(fresh?.status ?? 0), "\(String(describing: fresh?.status))")
        if fresh?.status == 503 {
            #expect(fresh?.header("Retry-After") != nil)
        }
        #expect(daemon.log.contains("graced listening"))
    }

    @Test("SIGTERM with debug logging and connections open: graced exits and says it stopped cleanly")
    func sigtermExitsPromptly() async throws {
        let folder = try folder()
        let daemon = try GracedProcess(
            database: folder + "/graced.sqlite", logPath: folder + "/graced.log",
            access: ["--no-auth", "--log-level", "debug"])
        try await daemon.waitUntilServing()
        // What a running host has open: an event stream, and a connection idle halfway through a head.
        let client = daemon.client
        let open = try await offPool { () -> [Int32] in
            let stream = try client.connectSocket()
            try client.sendAll(stream, Array("GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
            let idle = try client.connectSocket()
            try client.sendAll(idle, Array("GET /gpus HTTP/1.1\r\nHost: 127.0.0.1\r\n".utf8))
            return [stream, idle]
        }
        defer { open.forEach { close($0) } }

        let start = ContinuousClock.now
        daemon.signal(SIGTERM)
        let pid = daemon.pid
        let status = Mutex<Int32?>(nil)
        // The guard is generous (a loaded machine); the time taken is printed, not asserted.
        try await waitFor(seconds: 30) {
            var raw: Int32 = 0
            if waitpid(pid, &raw, WNOHANG) == pid { status.withLock { $0 = raw } }
            return status.withLock { $0 } != nil
        }
        guard let raw = status.withLock({ $0 }) else {
            kill(pid, SIGKILL)
            _ = await offPool { ChildProcess.wait(pid) }
            Issue.record("graced did not exit within 30 s of SIGTERM; its log: \(daemon.log)")
            return
        }
        let took = start.duration(to: .now)
        print("graced exited \(took) after SIGTERM")
        #expect(raw & 0x7f == 0 && (raw >> 8) & 0xff == 0, "exit status \(raw); log: \(daemon.log)")
        #expect(daemon.log.contains("shutdown: done in"), "\(daemon.log)")
        #expect(daemon.log.contains("graced stopped cleanly in"), "\(daemon.log)")
    }
}

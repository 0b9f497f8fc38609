import FoundationEssentials
import GraceTestSupport
import Passthrough
import Testing

@testable import GraceAPI
@testable import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

private struct Note: Encodable {
    var n: Int
}

/// `GET /events` end to end: a real server, a raw socket reading the chunked SSE body.
@Suite struct EventStreamTests {
    /// Waits (bounded) for `condition`, for counts that change on another thread.
    private func eventually(_ condition: () -> Bool) -> Bool {
        for _ in 0..<200 {
            if condition() { return true }
            usleep(25_000)
        }
        return condition()
    }

    @Test func streamsPublishedEventsAndResumesWithLastEventID() async throws {
        let service = try await RunningService.start()
        let hub = service.application.events
        let port = try #require(service.application.port)
        let stream = try await offPool { () throws -> SSETestClient in
            let client = try SSETestClient(port: port, target: "/events")
            try client.read { $0.text.contains("retry:") }
            return client
        }
        #expect(stream.status == 200)
        #expect(stream.header("Content-Type") == "text/event-stream")
        #expect(stream.header("Transfer-Encoding") == "chunked")
        let ids = (1...3).map { hub.publish(type: .jobPhase, job: "j", payload: Note(n: $0)).id! }
        let received = try await offPool { try stream.readEvents(3) }
        #expect(received.map(\.id) == ids)
        #expect(received.allSatisfy { $0.type == "job.phase" })

        // A client back with the first id gets the other two, then live ones: no gap, no duplicate.
        let later = hub.publish(type: .jobFinished, job: "j", payload: Note(n: 4)).id!
        for resume in [[("Last-Event-ID", "\(ids[0])")], []] {
            let target = resume.isEmpty ? "/events?lastEventId=\(ids[0])" : "/events"
            let resumed = try await offPool { () throws -> [SSETestClient.Event] in
                let client = try SSETestClient(port: port, target: target, headers: resume)
                return try client.readEvents(3)
            }
            #expect(resumed.map(\.id) == [ids[1], ids[2], later])
        }
    }

    @Test func theInventoryObserverReportsARemovedGPU() async throws {
        let service = try await RunningService.start()
        let port = try #require(service.application.port)
        let gpu = try #require(service.application.inventory.snapshot.gpus.first { $0.state != .missing })
        let stream = try await offPool { () throws -> SSETestClient in
            let client = try SSETestClient(
                port: port, target: "/events?gpu=\(gpu.bdf)&types=inventory.removed")
            try client.read { $0.text.contains("retry:") }
            return client
        }
        try service.simulated.kernel.perform(.remove(try #require(BDF(gpu.bdf))))
        try service.application.inventory.refresh()
        let changes = service.application.publishInventoryChanges()
        #expect(changes.map(\.type) == [.inventoryRemoved])
        let events = try await offPool { try stream.readEvents(1) }
        #expect(events.first?.type == "inventory.removed")
        let body = try JSONDecoder().decode(
            RemovedBody.self, from: Data(try #require(events.first).data.utf8))
        #expect(body.gpu == gpu.bdf && body.data.deviceId == gpu.deviceId && body.job == nil)
    }

    private struct RemovedBody: Decodable {
        struct Device: Decodable {
            var vendorId: String
            var deviceId: String
            var deviceName: String
            var driver: String?
        }
        var gpu: String?
        var job: String?
        var data: Device
    }

    @Test func refusesBadQueries() async throws {
        let service = try await RunningService.start()
        let bothDiffer = try await service.get("/events?lastEventId=3", headers: [("Last-Event-ID", "4")])
        #expect(bothDiffer.status == 400)
        #expect(try bothDiffer.problem().detail.contains("disagree"))
        let notAnId = try await service.get("/events", headers: [("Last-Event-ID", "abc")])
        #expect(notAnId.status == 400)
        let badGPU = try await service.get("/events?gpu=nope")
        #expect(try badGPU.problem().type.hasSuffix("/invalid-bdf"))
        let unknownGPU = try await service.get("/events?gpu=0000:7f:1f.7")
        #expect(unknownGPU.status == 404)
        let unknownType = try await service.get("/events?types=job.queued,job.exploded")
        #expect(unknownType.status == 422)
        let problem = try unknownType.problem()
        #expect(problem.detail.contains("job.exploded") && !problem.detail.contains("'job.queued'"))
        #expect(unknownType.text.contains("\"inventory.layout_drift\""))
        let badSeconds = try await service.get("/events?maxSeconds=0")
        #expect(badSeconds.status == 400)
    }

    @Test func heartbeatsFlowAndADisconnectedClientIsReleased() async throws {
        let service = try await RunningService.start(events: .init(heartbeat: .milliseconds(100)))
        let hub = service.application.events
        let port = try #require(service.application.port)
        let stream = try await offPool { () throws -> SSETestClient in
            let client = try SSETestClient(port: port, target: "/events")
            try client.read { $0.text.contains(": heartbeat\n\n") }
            return client
        }
        #expect(stream.text.contains(": heartbeat"))
        #expect(hub.subscriberCount == 1)
        stream.hangUp()
        // The next heartbeat finds the socket closed; MHD releases the response and its subscription.
        let released = await offPool { eventually { hub.subscriberCount == 0 } }
        #expect(released)
    }

    @Test func maxSecondsEndsTheStream() async throws {
        let service = try await RunningService.start(events: .init(heartbeat: .milliseconds(200)))
        let port = try #require(service.application.port)
        let stream = try await offPool { () throws -> SSETestClient in
            let client = try SSETestClient(port: port, target: "/events?maxSeconds=1")
            try client.read { _ in false }
            return client
        }
        #expect(stream.cleanEnd)
        let hub = service.application.events
        let released = await offPool { eventually { hub.subscriberCount == 0 } }
        #expect(released)
    }

    @Test func stoppingTheServerEndsOpenStreams() async throws {
        let service = try await RunningService.start()
        let hub = service.application.events
        let port = try #require(service.application.port)
        let streams = try await offPool { () throws -> [SSETestClient] in
            try (0..<3).map { _ in
                let client = try SSETestClient(port: port, target: "/events")
                try client.read { $0.text.contains("retry:") }
                return client
            }
        }
        let id = hub.publish(type: .deviceState, gpu: "0000:0a:00.0", payload: Note(n: 1)).id!
        await offPool { service.application.stop() }
        for stream in streams {
            try await offPool { try stream.read { _ in false } }
            #expect(stream.cleanEnd)
            #expect(stream.events.map(\.id) == [id])
        }
        let released = await offPool { eventually { hub.subscriberCount == 0 } }
        #expect(released)
    }
}

/// The engine's transitions on the stream: every phase, attempt and outcome of a job, and the GPU's
/// state changes, in order.
@Suite struct JobEventTests {
    @Test func aResetIsFollowedEventByEvent() async throws {
        let service = try await RunningService.start()
        let port = try #require(service.application.port)
        let gpu = "0009:01:00.0"
        try await service.setFaults(gpu, #"{"readyAfterMs": 200}"#)
        let stream = try await offPool { () throws -> SSETestClient in
            let client = try SSETestClient(
                port: port,
                target: "/events?gpu=\(gpu)&types=job.queued,job.phase,job.attempt,job.finished,device.state")
            try client.read { $0.text.contains("retry:") }
            return client
        }
        let job = try await service.submit(gpu, "reset")
        _ = try await service.get("/jobs/\(job.id)?wait=20")
        // queued, 4 phases (quiescing to verifying), the attempt issued and returned, finished, and the GPU going
        // resetting, not_ready, ready.
        let events = try await offPool { try stream.readEvents(11) }
        let ids = events.compactMap(\.id)
        #expect(ids.count == events.count && ids == ids.sorted())
        #expect(events.first?.type == "job.queued")
        struct Phase: Decodable {
            struct Data: Decodable { var phase: String }
            var data: Data
        }
        let phases = try events.filter { $0.type == "job.phase" }.map {
            try JSONDecoder().decode(Phase.self, from: Data($0.data.utf8)).data.phase
        }
        #expect(phases == ["quiescing", "resetting", "waiting_ready", "verifying"])
        let attempts = events.filter { $0.type == "job.attempt" }
        #expect(attempts.count == 2)
        #expect(
            attempts.allSatisfy { $0.data.contains(#""write":"bus/pci/devices/\#(gpu)/reset <- \"1\"""#) })
        #expect(events.last { $0.type.hasPrefix("job.") }?.type == "job.finished")
        let states = events.filter { $0.type == "device.state" }.map(\.data)
        #expect(states.count == 3, "\(states)")
        #expect(states.first?.contains(#""to":"resetting""#) == true)
        #expect(states.last?.contains(#""to":"ready""#) == true)
    }
}

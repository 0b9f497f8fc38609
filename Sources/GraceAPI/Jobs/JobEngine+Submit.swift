import FoundationEssentials
import Passthrough

extension JobEngine {
    /// What a submission came to.
    enum Submission {
        /// A new job, queued (202).
        case accepted(Job)
        /// The same `Idempotency-Key` again: the job it created (202).
        case repeated(Job)
        /// `dryRun`: the plan, nothing touched (200).
        case dryRun(DryRun)
        case refused(HTTPResponse)
    }

    /// `dryRun: true`: what a reset would do.
    struct DryRun: Encodable {
        var gpu: String
        var plan: ResetPlan
        var probe: String
        var deadlineSeconds: Double
        var wouldRun: Bool
    }

    /// A shorter deadline could not even cover one readiness poll and the write's own round trip.
    static let minimumDeadlineSeconds = 0.1

    func submitReset(_ bdf: BDF, _ request: ResetRequest, idempotencyKey: String?, requestedBy: String)
        -> Submission
    {
        let requested = request.method ?? .auto
        return submit(
            bdf, kind: .reset, methodRequested: requested.rawValue, deadlineSeconds: request.deadlineSeconds,
            requestJSON: JSON.encodeString(request), idempotencyKey: idempotencyKey, requestedBy: requestedBy,
            dryRun: request.dryRun == true
        ) { gpu in
            let plan = ResetPlanner(root: host.root, processes: processes).plan(bdf, method: requested)
            return (
                plan.refusal, plan.affected.map(\.bdf),
                .reset(
                    plan, probe: gpu.readinessProbe,
                    expected: PCIExpectation(gpu)
                        ?? PCIExpectation(
                            vendorID: 0xffff, deviceID: 0xffff, linkSpeed: nil, linkWidth: nil, bars: [])),
                dryRun: { deadline in
                    DryRun(
                        gpu: bdf.description, plan: plan, probe: gpu.readinessProbe.rawValue,
                        deadlineSeconds: deadline, wouldRun: plan.refusal == nil)
                }
            )
        }
    }

    func submitBind(_ bdf: BDF, _ request: BindRequest, idempotencyKey: String?, requestedBy: String)
        -> Submission
    {
        let driver = request.driver ?? "auto"
        return submit(
            bdf, kind: .bind, methodRequested: driver, deadlineSeconds: request.deadlineSeconds,
            requestJSON: JSON.encodeString(request), idempotencyKey: idempotencyKey, requestedBy: requestedBy,
            dryRun: false
        ) { gpu in
            let plan = BindPlanner(root: host.root, processes: processes, aliases: aliases)
                .plan(bdf, driver: driver, includeGroup: request.group ?? false)
            return (
                plan.refusal, plan.steps.map(\.bdf),
                .bind(
                    plan, probe: gpu.readinessProbe,
                    expected: PCIExpectation(gpu)
                        ?? PCIExpectation(
                            vendorID: 0xffff, deviceID: 0xffff, linkSpeed: nil, linkWidth: nil, bars: [])),
                dryRun: nil
            )
        }
    }

    func submitUnbind(_ bdf: BDF, _ request: UnbindRequest, idempotencyKey: String?, requestedBy: String)
        -> Submission
    {
        let driver = request.driver ?? "original"
        return submit(
            bdf, kind: .unbind, methodRequested: driver, deadlineSeconds: request.deadlineSeconds,
            requestJSON: JSON.encodeString(request), idempotencyKey: idempotencyKey, requestedBy: requestedBy,
            dryRun: false
        ) { _ in
            let plan = UnbindPlanner(root: host.root, processes: processes)
                .plan(bdf, to: UnbindPlan.Destination(driver), recordedOriginal: recordedOriginalDriver(bdf))
            return (plan.refusal, [bdf], .unbind(plan), dryRun: nil)
        }
    }

    /// The driver a GPU had before the service last bound it (from the last successful bind job).
    func recordedOriginalDriver(_ bdf: BDF) -> String? {
        let binds =
            (try? store.jobs(bdf: bdf.description, kind: JobKind.bind.rawValue, state: "succeeded", limit: 1))
            ?? []
        return binds.first.flatMap(Job.init(record:))?.details.originalDriver
    }

    typealias Planning = (
        refusal: Refusal?, affected: [BDF], work: JobWork, dryRun: ((Double) -> DryRun)?
    )

    /// The submit stage shared by every kind.
    private func submit(
        _ bdf: BDF, kind: JobKind, methodRequested: String, deadlineSeconds: Double?, requestJSON: String,
        idempotencyKey: String?, requestedBy: String, dryRun: Bool, plan: (GPUDevice) -> Planning
    ) -> Submission {
        if let deadlineSeconds,
            !(deadlineSeconds >= Self.minimumDeadlineSeconds
                && deadlineSeconds <= configuration.maximumDeadlineSeconds)
        {
            return .refused(
                .problem(
                    status: 422, slug: "value-out-of-range", title: "Value out of range",
                    detail:
                        "deadlineSeconds must be from \(Self.minimumDeadlineSeconds) to \(Int(configuration.maximumDeadlineSeconds)) (got \(deadlineSeconds)).",
                    resolution:
                        "Send a deadline in seconds within that range, or leave it out for the probe's own ceiling plus a margin.",
                    extensions: [
                        "field": "deadlineSeconds", "minimum": Self.minimumDeadlineSeconds,
                        "maximum": configuration.maximumDeadlineSeconds,
                    ]))
        }
        guard let gpu = inventory.snapshot.gpu(bdf.description) else {
            return .refused(CommonProblems.gpuNotFound(bdf))
        }
        if let idempotencyKey, let earlier = existingJob(idempotencyKey: idempotencyKey) {
            guard earlier.kind == kind && earlier.gpu == bdf else {
                return .refused(
                    .problem(
                        status: 422, slug: "idempotency-key-reused", title: "Idempotency-Key already used",
                        detail:
                            "The key \(idempotencyKey) belongs to job \(earlier.id), a \(earlier.kind.rawValue) of \(earlier.gpu).",
                        resolution: "Use a new Idempotency-Key for a different request."))
            }
            return .repeated(earlier)
        }
        if gpu.state == .missing {
            return .refused(
                .problem(
                    status: 409, slug: "gpu-missing", title: "GPU missing",
                    detail: "\(bdf) is no longer on the bus.",
                    resolution:
                        "Check the host (a rescan through /sys/bus/pci/rescan or a reboot may bring it back); GET /gpus shows when it returns."
                ))
        }
        if wedged.contains(bdf) {
            return .refused(
                .problem(
                    status: 409, slug: "gpu-wedged", title: "GPU wedged",
                    detail:
                        "A kernel write to \(bdf) has not returned; nothing more is written to it until it does.",
                    resolution:
                        "Check the host's kernel log; GET /gpus shows the state change when the kernel returns."
                ))
        }
        guard executor.hasCapacity else {
            return .refused(
                .problem(
                    status: 503, slug: "kernel-writes-stuck", title: "Too many stuck kernel writes",
                    detail:
                        "\(executor.stuckWrites.count) kernel writes are blocked in the kernel past their deadlines.",
                    resolution:
                        "Check the host's kernel log; the service accepts new jobs when those writes return.",
                    headers: [("Retry-After", "30")]))
        }
        if let busy = busyJob(for: [bdf]) {
            return sameRequest(busy, idempotencyKey) ? .repeated(busy) : .refused(conflict(bdf, with: busy))
        }

        let planning = plan(gpu)
        let deadlineSeconds = deadlineSeconds ?? defaultDeadlineSeconds(gpu)
        if dryRun, let describe = planning.dryRun {
            return .dryRun(describe(deadlineSeconds))
        }
        if let refusal = planning.refusal {
            return .refused(Self.problem(for: refusal, bdf: bdf))
        }

        let now = Timestamp.nowMs()
        let devices = Set(planning.affected + [bdf])
        let deviceId = (try? store.device(bdf: bdf.description))??.id ?? 0
        var job = Job(
            id: UUID().uuidString.lowercased(), kind: kind, gpu: bdf, deviceId: deviceId, state: .queued,
            phases: [],
            methodRequested: methodRequested,
            details: Job.Details(
                affected: devices.sorted().map(\.description), notes: [],
                deadlineMs: now + Int64(deadlineSeconds * 1000), requestedBy: requestedBy),
            createdAtMs: now, idempotencyKey: idempotencyKey, requestJSON: requestJSON)
        job.enter(.queued, atMs: now)
        let live = Live(
            job: job, lifecycle: .queued, token: CancellationToken(), work: planning.work, devices: devices,
            deadline: .now + .milliseconds(Int64(deadlineSeconds * 1000)))

        // Claim the devices and persist before queueing, so that a second request sees the first.
        let claimed = monitor.withLock { () -> String? in
            if let other = devices.lazy.compactMap({ self.state.busy[$0] }).first { return other }
            for device in devices { state.busy[device] = job.id }
            state.live[job.id] = live
            return nil
        }
        if let other = claimed, let busy = self.job(other) {
            // Two requests with one Idempotency-Key raced past the lookup: the loser gets the winner's job.
            return sameRequest(busy, idempotencyKey) ? .repeated(busy) : .refused(conflict(bdf, with: busy))
        }
        do {
            try store.insertJob(job.record)
        } catch {
            monitor.withLock {
                state.live.removeValue(forKey: job.id)
                for device in devices where state.busy[device] == job.id {
                    state.busy.removeValue(forKey: device)
                }
            }
            return .refused(
                .problem(
                    status: 503, slug: "store-unavailable", title: "Could not record the job",
                    detail: "The job could not be stored: \(error).",
                    resolution: "Nothing was done to the device. Check the database's disk and retry."))
        }
        monitor.withLock {
            state.queue.append(job.id)
            monitor.broadcast()
        }
        logger.info("job \(job.id): \(kind.rawValue) of \(bdf) queued")
        return .accepted(job)
    }

    private func existingJob(idempotencyKey: String) -> Job? {
        if let live = monitor.withLock({ state.live.values.first { $0.job.idempotencyKey == idempotencyKey } }
        ) {
            return live.job
        }
        return (try? store.job(idempotencyKey: idempotencyKey)).flatMap { $0.flatMap(Job.init(record:)) }
    }

    private func sameRequest(_ job: Job, _ idempotencyKey: String?) -> Bool {
        idempotencyKey != nil && job.idempotencyKey == idempotencyKey
    }

    private func busyJob(for devices: [BDF]) -> Job? {
        let id = monitor.withLock { devices.lazy.compactMap { self.state.busy[$0] }.first }
        return id.flatMap(job)
    }

    private func conflict(_ bdf: BDF, with other: Job) -> HTTPResponse {
        .problem(
            status: 409, slug: "job-pending", title: "Another job is pending on this GPU",
            detail:
                "Job \(other.id) (\(other.kind.rawValue) of \(other.gpu), \(other.state.rawValue)) touches \(bdf).",
            resolution:
                "Wait for job \(other.id) to finish (GET /jobs/\(other.id)) or cancel it (DELETE /jobs/\(other.id)); send the same Idempotency-Key to get the same job back.",
            extensions: ["job": other.id],
            headers: [("Location", "/jobs/\(other.id)")])
    }

    static func problem(for refusal: Refusal, bdf: BDF) -> HTTPResponse {
        .problem(
            status: refusal.httpStatus, slug: refusal.code.rawValue,
            title: "Refused: \(refusal.code.rawValue.replacingDashes())",
            detail: refusal.message, resolution: refusal.resolution,
            // Every problem of these two types lists `holders`, even when the planner named none.
            extensions: [.held, .groupNotViable].contains(refusal.code) ? ["holders": refusal.holders] : [:])
    }

    /// The probe's own ceiling plus a margin: CXL 1 s + the decoded Memory_Active timeout, nvgrace's
    /// legacy 30 s, and for any other device the kernel's 60 s wait for a device to come back.
    func defaultDeadlineSeconds(_ gpu: GPUDevice) -> Double {
        let margin = configuration.deadlineMarginSeconds
        switch gpu.readinessProbe {
        case .cxlDVSEC:
            let config = ConfigSpace(
                (try? host.root.readBytes(host.root.device(BDF(gpu.bdf)!) + "/config")) ?? [])
            guard let register = config.cxlRange1SizeLow()?.register else { return 257 + margin }
            return CXLDVSECCheck.defaultDeadlineSeconds(register: register) + margin
        case .nvgraceBAR0:
            return NvgraceBAR0Check.ceilingSeconds + margin
        case .pci:
            return 60 + margin
        }
    }
}

extension String {
    fileprivate func replacingDashes() -> String {
        split(separator: "-").joined(separator: " ")
    }
}

import FoundationEssentials
import GraceHTTP
import Passthrough
import Store

extension JobEngine {
    /// What a submission came to.
    enum Submission {
        /// A new job, queued (202).
        case accepted(Job)
        /// The same `Idempotency-Key` again: the job it created (202).
        case repeated(Job)
        /// `dryRun`: the plan, nothing touched (200).
        case dryRun(DryRun)
        case refused(SubmitRefusal)
    }

    /// `dryRun: true`: what a reset would do.
    struct DryRun: Encodable {
        var gpu: String
        var plan: ResetPlan
        var probe: String
        var deadlineSeconds: Double
        var wouldRun: Bool
        /// For `method: escalate`: the rungs that would be climbed and why each is or is not allowed.
        @NullEncodable var ladder: EscalationLadder? = nil
    }

    /// A shorter deadline could not even cover one readiness poll and the write's own round trip.
    static let minimumDeadlineSeconds = 0.1

    func submitReset(
        _ bdf: BDF, _ request: ResetRequest, idempotencyKey: String?, requestedBy: String,
        audit: TransactionalAudit? = nil
    )
        -> Submission
    {
        let requested = request.method ?? .auto
        if requested == .escalate {
            return submitEscalation(
                bdf, request, idempotencyKey: idempotencyKey, requestedBy: requestedBy,
                audit: audit)
        }
        return submit(
            bdf, kind: .reset, methodRequested: requested.rawValue, deadlineSeconds: request.deadlineSeconds,
            requestJSON: JSON.encodeString(request), idempotencyKey: idempotencyKey, requestedBy: requestedBy,
            audit: audit,
            dryRun: request.dryRun == true
        ) { gpu in
            let plan = ResetPlanner(root: host.root, processes: processes).plan(bdf, method: requested)
            return (
                plan.refusal, plan.affected.map(\.bdf),
                .reset(
                    plan, probe: gpu.readinessProbe,
                    expected: Self.expectation(gpu)),
                dryRun: { deadline in
                    DryRun(
                        gpu: bdf.description, plan: plan, probe: gpu.readinessProbe.rawValue,
                        deadlineSeconds: deadline, wouldRun: plan.refusal == nil)
                }
            )
        }
    }

    /// `method: escalate`: the ladder is planned at submit; the job claims every function an allowed
    /// rung reaches. Its default deadline is the single reset's times the rungs that may run.
    private func submitEscalation(
        _ bdf: BDF, _ request: ResetRequest, idempotencyKey: String?, requestedBy: String,
        audit: TransactionalAudit?
    ) -> Submission {
        let ladder = EscalationPlanner(root: host.root, processes: processes).plan(bdf)
        let deadline =
            request.deadlineSeconds
            ?? inventory.snapshot.gpu(bdf.description).map {
                min(
                    defaultDeadlineSeconds($0) * Double(max(1, ladder.runnable.count)),
                    configuration.maximumDeadlineSeconds)
            }
        return submit(
            bdf, kind: .reset, methodRequested: ResetMethod.escalate.rawValue, deadlineSeconds: deadline,
            requestJSON: JSON.encodeString(request), idempotencyKey: idempotencyKey, requestedBy: requestedBy,
            audit: audit,
            dryRun: request.dryRun == true
        ) { gpu in
            let first = ResetPlanner(root: host.root, processes: processes).plan(bdf, method: .auto)
            return (
                ladder.refusal, ladder.affected,
                .escalate(
                    ladder, probe: gpu.readinessProbe,
                    expected: Self.expectation(gpu)),
                dryRun: { deadline in
                    DryRun(
                        gpu: bdf.description, plan: ladder.runnable.first?.plan ?? first,
                        probe: gpu.readinessProbe.rawValue, deadlineSeconds: deadline,
                        wouldRun: ladder.refusal == nil, ladder: ladder)
                }
            )
        }
    }

    func submitBind(
        _ bdf: BDF, _ request: BindRequest, idempotencyKey: String?, requestedBy: String,
        audit: TransactionalAudit? = nil
    )
        -> Submission
    {
        let driver = request.driver ?? "auto"
        return submit(
            bdf, kind: .bind, methodRequested: driver, deadlineSeconds: request.deadlineSeconds,
            requestJSON: JSON.encodeString(request), idempotencyKey: idempotencyKey, requestedBy: requestedBy,
            audit: audit,
            dryRun: false
        ) { gpu in
            bindPlanning(bdf, driver: driver, includeGroup: request.group ?? false, gpu: gpu)
        }
    }

    func submitUnbind(
        _ bdf: BDF, _ request: UnbindRequest, idempotencyKey: String?, requestedBy: String,
        audit: TransactionalAudit? = nil
    )
        -> Submission
    {
        let driver = request.driver ?? "original"
        return submit(
            bdf, kind: .unbind, methodRequested: driver, deadlineSeconds: request.deadlineSeconds,
            requestJSON: JSON.encodeString(request), idempotencyKey: idempotencyKey, requestedBy: requestedBy,
            audit: audit,
            dryRun: false
        ) { _ in
            let plan = UnbindPlanner(root: host.root, processes: processes)
                .plan(bdf, to: UnbindPlan.Destination(driver), recordedOriginal: recordedOriginalDriver(bdf))
            return (plan.refusal, [bdf], .unbind(plan), dryRun: nil)
        }
    }

    /// The planning of a bind to `driver`, shared by `POST .../bind` and reconcile jobs.
    func bindPlanning(_ bdf: BDF, driver: String, includeGroup: Bool, gpu: GPUDevice) -> Planning {
        let plan = BindPlanner(root: host.root, processes: processes, aliases: aliases)
            .plan(bdf, driver: driver, includeGroup: includeGroup)
        return (
            plan.refusal, plan.steps.map(\.bdf),
            .bind(plan, probe: gpu.readinessProbe, expected: Self.expectation(gpu)),
            dryRun: nil
        )
    }

    /// What the probe checks after the job: the GPU's identity, link and BARs as last read; a GPU
    /// the inventory could not describe expects an identity no device has, so it is never called ready.
    static func expectation(_ gpu: GPUDevice) -> PCIExpectation {
        PCIExpectation(gpu)
            ?? PCIExpectation(vendorID: 0xffff, deviceID: 0xffff, linkSpeed: nil, linkWidth: nil, bars: [])
    }

    /// The driver a GPU had before the service last bound it (from the last successful bind job).
    func recordedOriginalDriver(_ bdf: BDF) -> String? {
        // A bind a client has just seen succeed may not be stored as succeeded yet (it is still
        // putting things back, or its record is on its way to the disk): those come first.
        let recent = (state.read { $0.jobs.values.map(\.machine.job) } + recorder.pendingJobs)
            .filter { $0.gpu == bdf && $0.kind == .bind && $0.state == .succeeded }
            .max { $0.createdAtMs < $1.createdAtMs }
        if let recent { return recent.details.originalDriver }
        let binds =
            (try? store.jobs(bdf: bdf.description, kind: JobKind.bind.rawValue, state: "succeeded", limit: 1))
            ?? []
        return binds.first.flatMap(Job.init(record:))?.details.originalDriver
    }

    typealias Planning = (
        refusal: Refusal?, affected: [BDF], work: JobWork, dryRun: ((Double) -> DryRun)?
    )

    /// The submit stage shared by every kind.
    func submit(
        _ bdf: BDF, kind: JobKind, methodRequested: String, deadlineSeconds: Double?, requestJSON: String,
        idempotencyKey: String?, requestedBy: String, audit: TransactionalAudit? = nil, dryRun: Bool,
        plan: (GPUDevice) -> Planning
    ) -> Submission {
        if !state.read({ $0.accepting }) { return .refused(.shuttingDown) }
        if let deadlineSeconds,
            !(deadlineSeconds >= Self.minimumDeadlineSeconds
                && deadlineSeconds <= configuration.maximumDeadlineSeconds)
        {
            return .refused(
                .deadlineOutOfRange(
                    got: deadlineSeconds, minimum: Self.minimumDeadlineSeconds,
                    maximum: configuration.maximumDeadlineSeconds))
        }
        guard let gpu = inventory.snapshot.gpu(bdf.description) else { return .refused(.gpuNotFound(bdf)) }
        if let idempotencyKey, let earlier = existingJob(idempotencyKey: idempotencyKey) {
            return answer(
                forKey: idempotencyKey, owner: earlier, kind: kind, bdf: bdf, requestJSON: requestJSON)
        }
        let submission = submitNew(
            bdf, gpu, kind: kind, methodRequested: methodRequested, deadlineSeconds: deadlineSeconds,
            requestJSON: requestJSON, idempotencyKey: idempotencyKey, requestedBy: requestedBy, audit: audit,
            dryRun: dryRun,
            plan: plan)
        // The key was looked up before the checks that can refuse (the GPU busy, the plan refused);
        // the claim that reserves it comes after them. A request with the same key that claimed the
        // GPU in between makes this one look busy: the key's job answers it, as it would a moment later.
        if case .refused = submission, let idempotencyKey,
            let owner = existingJob(idempotencyKey: idempotencyKey)
        {
            return answer(
                forKey: idempotencyKey, owner: owner, kind: kind, bdf: bdf, requestJSON: requestJSON)
        }
        return submission
    }

    /// The rest of the submit stage, for a request whose key (if any) no job had when it was looked up.
    private func submitNew(
        _ bdf: BDF, _ gpu: GPUDevice, kind: JobKind, methodRequested: String, deadlineSeconds: Double?,
        requestJSON: String, idempotencyKey: String?, requestedBy: String, audit: TransactionalAudit?,
        dryRun: Bool,
        plan: (GPUDevice) -> Planning
    ) -> Submission {
        if gpu.state == .missing { return .refused(.gpuMissing(bdf)) }
        if isWedged(bdf) { return .refused(.gpuWedged(bdf)) }
        guard executor.hasCapacity else {
            return .refused(.kernelWritesStuck(count: executor.stuckWrites.count))
        }
        if recorder.isDegraded { return .refused(.storeDegraded(recorder.health.lastError)) }
        if let busy = busyJob(for: [bdf]) { return .refused(.busy(bdf, job: busy)) }

        let planning = plan(gpu)
        let deadlineSeconds = deadlineSeconds ?? defaultDeadlineSeconds(gpu)
        if dryRun, let describe = planning.dryRun {
            return .dryRun(describe(deadlineSeconds))
        }
        if let refusal = planning.refusal { return .refused(.plan(refusal)) }

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
        let live = LiveJob(
            machine: JobMachine(job: job), token: CancellationToken(), work: planning.work, devices: devices,
            deadline: .now + .milliseconds(Int64(deadlineSeconds * 1000)))

        // Claim the devices, reserve the key and store the job in one step under the engine's lock, so
        // that of two requests racing for a device or a key exactly one gets it. The insert is one
        // short SQLite transaction; nothing else waits on this lock for long.
        let claim = state.withLock { state -> Result<Void, SubmitRefusal> in
            guard state.accepting else { return .failure(.shuttingDown) }
            if let key = idempotencyKey, let owner = state.keys[key], let other = state.jobs[owner] {
                return .failure(.idempotencyKeyReused(key: key, job: other.machine.job))
            }
            var takeOvers: [BDF] = []
            for device in devices.sorted() {
                switch DeviceMachine.claim(state.devices[device]) {
                case .granted: continue
                case .wedged: return .failure(.gpuWedged(device))
                case .busy(let owner):
                    guard let other = state.jobs[owner] else { return .failure(.gpuWedged(device)) }
                    // Its job has ended and only puts things back: the new job takes the device after.
                    if other.machine.isTerminal, state.successors[device] == nil {
                        takeOvers.append(device)
                        continue
                    }
                    let holder = state.successors[device].flatMap { state.jobs[$0] } ?? other
                    return .failure(.busy(device, job: holder.machine.job))
                }
            }
            // The job and its `job.queued` event are one transaction, or neither is written.
            // So is the request's audit line, saying it is answered 202 with this job.
            let record = job.record
            var receipt: TransactionalAudit.Receipt?
            do {
                if let events {
                    try events.publish(
                        [JobEvents.draft(.queued, of: job)].compactMap { $0 },
                        heldFor: Set(devices.map(\.description))
                    ) { connection in
                        try GraceStore.insertJob(connection, record)
                        receipt = try audit?.write(in: connection, status: 202, job: record.id)
                    }
                } else {
                    try store.database.transaction { connection in
                        try GraceStore.insertJob(connection, record)
                        receipt = try audit?.write(in: connection, status: 202, job: record.id)
                    }
                }
                audit?.commit(receipt)
            } catch {
                if case GraceStoreError.idempotencyKeyTaken(let key, _) = store.idempotencyConflict(
                    inserting: record, failedWith: error)
                {
                    return .failure(.idempotencyKeyReused(key: key, job: job))
                }
                return .failure(.storeUnavailable("\(error)"))
            }
            for device in devices where !takeOvers.contains(device) {
                state.devices[device] = .claimed(job: job.id)
            }
            for device in takeOvers { state.successors[device] = job.id }
            if let key = idempotencyKey { state.keys[key] = job.id }
            state.jobs[job.id] = live
            return .success(())
        }
        switch claim {
        case .success:
            break
        case .failure(.idempotencyKeyReused(let key, let other)) where other.id == job.id:
            // The key went to a job that has left memory since we looked: its stored record answers.
            guard let owner = existingJob(idempotencyKey: key) else {
                return .refused(.storeUnavailable("the key's job could not be read"))
            }
            return answer(forKey: key, owner: owner, kind: kind, bdf: bdf, requestJSON: requestJSON)
        case .failure(.idempotencyKeyReused(let key, let other)):
            return answer(forKey: key, owner: other, kind: kind, bdf: bdf, requestJSON: requestJSON)
        case .failure(let refusal):
            return .refused(refusal)
        }
        recorder.inserted(job.id, revision: live.machine.revision, record: job.record)
        // Announced (`job.queued`, with the insert above) before a worker can take it, so that
        // `queued` always comes before `started`.
        logger.info("job \(job.id): \(kind.rawValue) of \(bdf) queued")
        state.withLock { state in
            if state.jobs[job.id]?.machine.state == .queued { state.queue.append(job.id) }
        }
        return .accepted(job)
    }

    /// A request that carries an Idempotency-Key another job already has: that job when it was
    /// created by the same request (same kind, same GPU, the same body as decoded, so spacing and key
    /// order do not matter), else a refusal naming it (422, as draft-ietf-httpapi-idempotency-key-
    /// header answers a key reused with another payload).
    private func answer(forKey key: String, owner: Job, kind: JobKind, bdf: BDF, requestJSON: String)
        -> Submission
    {
        guard owner.kind == kind && owner.gpu == bdf && owner.requestJSON == requestJSON else {
            return .refused(.idempotencyKeyReused(key: key, job: owner))
        }
        return .repeated(owner)
    }

    private func existingJob(idempotencyKey: String) -> Job? {
        let live = state.read { state in
            state.keys[idempotencyKey].flatMap { state.jobs[$0]?.machine.job }
        }
        if let live { return live }
        return (try? store.job(idempotencyKey: idempotencyKey)).flatMap { $0.flatMap(Job.init(record:)) }
    }

    /// The job that holds one of `devices` and will go on holding it (a job that has ended only
    /// puts things back and hands the device over).
    private func busyJob(for devices: [BDF]) -> Job? {
        state.read { state in
            for device in devices {
                if let next = state.successors[device], let job = state.jobs[next]?.machine.job { return job }
                if let owner = state.devices[device]?.job, let live = state.jobs[owner],
                    !live.machine.isTerminal
                {
                    return live.machine.job
                }
            }
            return nil
        }
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

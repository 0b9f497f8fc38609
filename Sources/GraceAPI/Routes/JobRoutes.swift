import GraceHTTP
import Passthrough
import Store

/// `POST /gpus/{bdf}/reset|bind|unbind`, `GET /jobs`, `GET|DELETE /jobs/{id}`, `GET /gpus/{bdf}/resets`.
enum JobRoutes {
    static func register(in router: inout Router, engine: JobEngine) {
        // A submission's audit line is written with the job it creates (`TransactionalAudit`).
        router.post("/gpus/{bdf}/reset", auditsInTransaction: true) { request, parameters in
            .respond(
                mutation(request, parameters, ResetRequest.self, fields: ResetRequest.fields) {
                    bdf, body, key in
                    engine.submitReset(
                        bdf, body, idempotencyKey: key, requestedBy: request.caller.name,
                        audit: request.audit as? TransactionalAudit
                    )
                })
        }
        router.post("/gpus/{bdf}/bind", auditsInTransaction: true) { request, parameters in
            .respond(
                mutation(request, parameters, BindRequest.self, fields: BindRequest.fields) {
                    bdf, body, key in
                    engine.submitBind(
                        bdf, body, idempotencyKey: key, requestedBy: request.caller.name,
                        audit: request.audit as? TransactionalAudit
                    )
                })
        }
        router.post("/gpus/{bdf}/unbind", auditsInTransaction: true) { request, parameters in
            .respond(
                mutation(request, parameters, UnbindRequest.self, fields: UnbindRequest.fields) {
                    bdf, body, key in
                    engine.submitUnbind(
                        bdf, body, idempotencyKey: key, requestedBy: request.caller.name,
                        audit: request.audit as? TransactionalAudit
                    )
                })
        }
        router.get("/jobs/{id}") { request, parameters in
            let id = parameters["id"] ?? ""
            let wait: Duration?
            switch waitParameter(request) {
            case .failure(let problem): return .respond(problem.response)
            case .success(let parsed): wait = parsed
            }
            guard let job = engine.job(id) else { return .respond(jobNotFound(id)) }
            guard let wait, !job.state.isTerminal else { return .respond(.json(JobView(job))) }
            // Waiting suspends the connection: no libmicrohttpd thread is held.
            return .deferred {
                let current = await engine.waitForEnd(of: id, timeout: wait) ?? job
                return .json(JobView(current))
            }
        }
        router.delete("/jobs/{id}") { request, parameters in
            let id = parameters["id"] ?? ""
            let wait: Duration?
            switch waitParameter(request) {
            case .failure(let problem): return .respond(problem.response)
            case .success(let parsed): wait = parsed
            }
            switch engine.cancel(id, reason: "cancelled by \(request.caller.name)") {
            case .notFound:
                return .respond(jobNotFound(id))
            case .accepted(let job):
                let answer = { @Sendable (job: Job) in
                    HTTPResponse.json(JobView(job), status: 202, headers: [("Location", "/jobs/\(job.id)")])
                        .naming(job: job.id)
                }
                guard let wait, !job.state.isTerminal else { return .respond(answer(job)) }
                return .deferred { answer(await engine.waitForEnd(of: id, timeout: wait) ?? job) }
            case .alreadyFinished(let job):
                return .respond(
                    .problem(
                        status: 409, slug: "job-finished", title: "Job already finished",
                        detail: "Job \(job.id) ended \(job.state.rawValue); there is nothing to cancel.",
                        resolution: "Read its outcome with GET /jobs/\(job.id).",
                        extensions: ["state": job.state.rawValue]))
            }
        }
        router.get("/jobs") { request, _ in
            var gpu: BDF?
            if let text = request.query["gpu"] {
                guard let parsed = BDF(text) else { return .respond(CommonProblems.invalidBDF(text)) }
                gpu = parsed
            }
            var state: JobState?
            if let text = request.query["state"] {
                guard let parsed = JobState(rawValue: text) else {
                    return .respond(
                        .problem(
                            status: 400, slug: "invalid-query", title: "Invalid state filter",
                            detail: "'\(text.prefix(40))' is not a job state.",
                            resolution: "Use one of: "
                                + JobState.allCases.map(\.rawValue).joined(separator: ", ") + "."))
                }
                state = parsed
            }
            return .respond(list(request, engine: engine, gpu: gpu, kind: nil, state: state))
        }
        router.get("/gpus/{bdf}/resets") { request, parameters in
            switch CommonProblems.parseBDF(parameters) {
            case .failure(let problem): return .respond(problem.response)
            case .success(let bdf):
                return .respond(list(request, engine: engine, gpu: bdf, kind: .reset, state: nil))
            }
        }
    }

    /// The shared edge of every mutation: the BDF, the body, the `Idempotency-Key`, then the engine's
    /// answer as 202 with `Location`, 200 for a dry run, or the problem.
    private static func mutation<Body: Decodable>(
        _ request: HTTPRequest, _ parameters: [String: String], _ type: Body.Type, fields: Set<String>,
        submit: (BDF, Body, String?) -> JobEngine.Submission
    ) -> HTTPResponse {
        let bdf: BDF
        switch CommonProblems.parseBDF(parameters) {
        case .failure(let problem): return problem.response
        case .success(let parsed): bdf = parsed
        }
        let body: Body
        switch RequestBody.decode(type, from: request.body, fields: fields) {
        case .failure(let problem): return problem.response
        case .success(let decoded): body = decoded
        }
        // One key, read one way: with two, which job a retry returns would depend on which we read.
        let keys = request.headers.values(for: "Idempotency-Key")
        let key = keys.first
        if keys.count > 1 || key.map({ $0.isEmpty || $0.utf8.count > 200 }) == true {
            return CommonProblems.invalidBody(
                "The request must carry at most one Idempotency-Key header, of 1 to 200 characters.",
                resolution: "Send a unique key per request, e.g. a UUID, once.")
        }
        switch submit(bdf, body, key) {
        case .accepted(let job), .repeated(let job):
            return .json(JobView(job), status: 202, headers: [("Location", "/jobs/\(job.id)")])
                .naming(job: job.id)
        case .dryRun(let plan):
            return .json(plan)
        case .refused(let refusal):
            return JobProblems.response(for: refusal)
        }
    }

    struct Page: Encodable {
        var items: [JobView]
        /// Pass as `before` for the next page; null on the last one.
        @NullEncodable var next: String?
    }

    private static func list(
        _ request: HTTPRequest, engine: JobEngine, gpu: BDF?, kind: JobKind?, state: JobState?
    ) -> HTTPResponse {
        let limit: Int
        let cursor: GraceStore.JobCursor?
        switch (Paging.limit(request), Paging.cursor(request, parseCursor)) {
        case (.failure(let problem), _), (_, .failure(let problem)): return problem.response
        case (.success(let parsedLimit), .success(let parsedCursor)):
            limit = parsedLimit
            cursor = parsedCursor
        }
        do {
            let jobs = try engine.jobs(gpu: gpu, kind: kind, state: state, limit: limit, after: cursor)
            let next = jobs.count == limit ? jobs.last.map { "\($0.createdAtMs)_\($0.id)" } : nil
            return .json(Page(items: jobs.map(JobView.init), next: next))
        } catch {
            return .problem(
                status: 503, slug: "store-unavailable", title: "Could not read the jobs",
                detail: "The job history could not be read: \(error).",
                resolution: "Retry shortly; check the database's disk.")
        }
    }

    /// `<createdAtMs>_<id>`: 1 to 18 digits, then 1 to 64 of `0-9 a-z -` (a job id is a lowercase
    /// UUID). Exactly the pattern openapi.yaml gives `before`, so that what the contract calls valid
    /// is accepted and nothing else is.
    static func parseCursor(_ text: String) -> GraceStore.JobCursor? {
        guard let separator = text.firstIndex(of: "_") else { return nil }
        let digits = text.utf8[..<separator]
        let id = text.utf8[text.utf8.index(after: separator)...]
        guard (1...18).contains(digits.count), digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            (1...64).contains(id.count),
            id.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D }),
            let ms = Int64(String(text[..<separator]))
        else { return nil }
        return GraceStore.JobCursor(createdAtMs: ms, id: String(text[text.index(after: separator)...]))
    }

    /// The longest `?wait=` accepted, in seconds.
    static let maximumWaitSeconds = 300

    /// `?wait=SECONDS`: whole seconds from 1 to 300.
    static func waitParameter(_ request: HTTPRequest) -> Result<Duration?, ProblemResponse> {
        guard let text = request.query["wait"] else { return .success(nil) }
        guard (1...3).contains(text.utf8.count), text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let seconds = Int(text), (1...maximumWaitSeconds).contains(seconds)
        else {
            return .failure(
                ProblemResponse(
                    response: .problem(
                        status: 400, slug: "invalid-query", title: "Invalid wait",
                        detail: "wait must be whole seconds from 1 to \(maximumWaitSeconds).",
                        resolution: "Send ?wait=30 to wait up to 30 s for the job to end.")))
        }
        return .success(.seconds(seconds))
    }

    static func jobNotFound(_ id: String) -> HTTPResponse {
        .problem(
            status: 404, slug: "job-not-found", title: "No such job",
            detail: "No job has the id '\(PercentDecoding.decode(id).prefix(64))'.",
            resolution: "List jobs with GET /jobs; ids are UUIDs.")
    }
}

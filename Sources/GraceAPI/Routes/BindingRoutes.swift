import GraceHTTP
import Passthrough
import Store

/// `GET /bindings` (viewer): the desired driver of every function graced bound or unbound, and
/// whether it holds now; `DELETE /bindings/{bdf}` (operator): forget one.
enum BindingRoutes {
    struct Binding: Encodable {
        var bdf: String
        /// Null: the function should have no driver.
        var desiredDriver: String?
        /// Null: no driver now (or the function is absent).
        var currentDriver: String?
        var holds: Bool
        /// `holds`, `absent`, `reconciling` (a reconcile job was submitted or a job holds it),
        /// `held` (someone holds it: reported, not touched), `differs` (report mode, or it could
        /// not be reconciled; looked at again when its driver changes).
        var status: String
        var note: String?
        var setAt: String
        var job: String?

        private enum CodingKeys: String, CodingKey {
            case bdf, desiredDriver, currentDriver, holds, status, note, setAt, job
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(bdf, forKey: .bdf)
            try container.encode(desiredDriver, forKey: .desiredDriver)
            try container.encode(currentDriver, forKey: .currentDriver)
            try container.encode(holds, forKey: .holds)
            try container.encode(status, forKey: .status)
            try container.encode(note, forKey: .note)
            try container.encode(setAt, forKey: .setAt)
            try container.encode(job, forKey: .job)
        }
    }

    struct List: Encodable {
        var items: [Binding]
        /// `apply` or `report` (`graced serve --reconcile`).
        var reconcile: String
    }

    static func register(in router: inout Router, store: GraceStore, reconciler: BindingReconciler) {
        router.get("/bindings") { _, _ in
            do {
                let items = try store.desiredBindings().map { view($0, reconciler: reconciler) }
                return .respond(
                    .json(
                        List(items: items, reconcile: reconciler.mode.rawValue),
                        headers: [("Cache-Control", "no-store")]))
            } catch {
                return .respond(storeUnavailable(error))
            }
        }
        router.delete("/bindings/{bdf}") { _, parameters in
            switch CommonProblems.parseBDF(parameters) {
            case .failure(let problem): return .respond(problem.response)
            case .success(let bdf):
                do {
                    guard
                        let binding = try store.desiredBindings().first(where: { $0.bdf == bdf.description }),
                        try store.deleteDesiredBinding(bdf: bdf.description)
                    else {
                        return .respond(
                            .problem(
                                status: 404, slug: "binding-not-found", title: "No desired binding",
                                detail: "graced has no desired driver recorded for \(bdf).",
                                resolution: "GET /bindings lists the functions it keeps on their drivers."))
                    }
                    let answer = view(binding, reconciler: reconciler)
                    reconciler.forget(bdf.description)
                    return .respond(.json(answer))
                } catch {
                    return .respond(storeUnavailable(error))
                }
            }
        }
    }

    static func view(_ binding: DesiredBinding, reconciler: BindingReconciler) -> Binding {
        let current = reconciler.currentDriver(binding.bdf)
        let holds = current.map { $0 == binding.driver } ?? false
        var status: String
        var note: String?
        switch (holds, current, reconciler.verdict(binding.bdf)) {
        case (true, _, _):
            status = "holds"
        case (false, nil, _):
            status = "absent"
            note = "the function is not on the bus"
        case (false, _, .submitted(let job)?):
            status = "reconciling"
            note = "reconcile job \(job)"
        case (false, _, .held(let why)?):
            status = "held"
            note = why
        case (false, _, .waiting(let why)?):
            status = "differs"
            note = "not yet (tried again at the next scan): \(why)"
        case (false, _, .refused(let why)?):
            status = "differs"
            note = "could not reconcile: \(why)"
        case (false, _, .reported?):
            status = "differs"
            note = "reported only (--reconcile report)"
        case (false, _, nil):
            status = "differs"
        }
        return Binding(
            bdf: binding.bdf, desiredDriver: binding.driver, currentDriver: current ?? nil, holds: holds,
            status: status, note: note, setAt: Timestamp.rfc3339(ms: binding.setAtMs), job: binding.jobId)
    }

    private static func storeUnavailable(_ error: any Error) -> HTTPResponse {
        .problem(
            status: 503, slug: "store-unavailable", title: "Could not read the desired bindings",
            detail: "The database could not be read: \(error).",
            resolution: "Retry shortly; check the database's disk.")
    }
}

import GraceHTTP
import Passthrough

/// The job engine's domain answers in the API's words: statuses and problem+json. The only place that
/// knows which status a refusal or a failed job gets.
enum JobProblems {
    /// The status and problem type of a failed job, for `JobView.error`.
    static func view(_ failure: JobFailure) -> JobView.Failure {
        let status =
            switch failure.reason {
            case .cancelled: 409
            case .deadline, .wedged: 504
            case .kernelError, .layoutDrift, .driverNotBound, .needsReboot: 502
            case .interrupted: 503
            }
        return JobView.Failure(
            type: Problem.typeBase + failure.reason.rawValue, title: failure.summary, status: status,
            detail: failure.detail, resolution: failure.resolution, errno: failure.errno?.rawValue,
            errnoName: failure.errno?.name)
    }

    static func response(for refusal: SubmitRefusal) -> HTTPResponse {
        switch refusal {
        case .deadlineOutOfRange(let got, let minimum, let maximum):
            return .problem(
                status: 422, slug: "value-out-of-range", title: "Value out of range",
                detail: "deadlineSeconds must be from \(minimum) to \(Int(maximum)) (got \(got)).",
                resolution:
                    "Send a deadline in seconds within that range, or leave it out for the probe's own ceiling plus a margin.",
                extensions: ["field": "deadlineSeconds", "minimum": minimum, "maximum": maximum])
        case .gpuNotFound(let bdf):
            return CommonProblems.gpuNotFound(bdf)
        case .idempotencyKeyReused(let key, let job):
            return .problem(
                status: 422, slug: "idempotency-key-reused", title: "Idempotency-Key already used",
                detail:
                    "The key \(key) belongs to job \(job.id), a \(job.kind.rawValue) of \(job.gpu) with another request body.",
                resolution:
                    "Send the same request again to get that job, or use a new Idempotency-Key for a different request.",
                extensions: ["job": job.id], headers: [("Location", "/jobs/\(job.id)")]
            ).naming(job: job.id)
        case .gpuMissing(let bdf):
            return .problem(
                status: 409, slug: "gpu-missing", title: "GPU missing",
                detail: "\(bdf) is no longer on the bus.",
                resolution:
                    "Check the host (a rescan through /sys/bus/pci/rescan or a reboot may bring it back); GET /gpus shows when it returns."
            )
        case .gpuWedged(let bdf):
            return .problem(
                status: 409, slug: "gpu-wedged", title: "GPU wedged",
                detail:
                    "A kernel write to \(bdf) has not returned; nothing more is written to it until it does.",
                resolution:
                    "Check the host's kernel log; GET /gpus shows the state change when the kernel returns.")
        case .kernelWritesStuck(let count):
            return .problem(
                status: 503, slug: "kernel-writes-stuck", title: "Too many stuck kernel writes",
                detail: "\(count) kernel writes are blocked in the kernel past their deadlines.",
                resolution:
                    "Check the host's kernel log; the service accepts new jobs when those writes return.",
                headers: [("Retry-After", "30")])
        case .busy(let bdf, let other):
            return .problem(
                status: 409, slug: "job-pending", title: "Another job is pending on this GPU",
                detail:
                    "Job \(other.id) (\(other.kind.rawValue) of \(other.gpu), \(other.state.rawValue)) touches \(bdf).",
                resolution:
                    "Wait for job \(other.id) to finish (GET /jobs/\(other.id)?wait=30) or cancel it (DELETE /jobs/\(other.id)); send the same Idempotency-Key to get the same job back.",
                extensions: ["job": other.id],
                headers: [("Location", "/jobs/\(other.id)")]
            ).naming(job: other.id)
        case .plan(let refusal):
            let status =
                switch refusal.kind {
                case .absent: 404
                case .inTheWay: 409
                case .notApplicable: 422
                }
            return .problem(
                status: status, slug: refusal.code.rawValue,
                title: "Refused: " + refusal.code.rawValue.split(separator: "-").joined(separator: " "),
                detail: refusal.message, resolution: refusal.resolution,
                // Every problem of these two types lists `holders`, even when the planner named none.
                extensions: [.held, .groupNotViable].contains(refusal.code)
                    ? ["holders": refusal.holders] : [:])
        case .storeUnavailable(let error):
            return .problem(
                status: 503, slug: "store-unavailable", title: "Could not record the job",
                detail: "The job could not be stored: \(error).",
                resolution: "Nothing was done to the device. Check the database's disk and retry.",
                headers: [("Retry-After", "5")])
        case .storeDegraded(let error):
            return .problem(
                status: 503, slug: "store-degraded", title: "Job records are not reaching the disk",
                detail: "Earlier job records could not be written yet"
                    + (error.map { " (\($0))" } ?? "") + "; no new job is accepted until they are.",
                resolution:
                    "Free space on the database's disk (or fix its permissions); GET /healthz shows when the store has caught up. Nothing was done to the device.",
                headers: [("Retry-After", "5")])
        case .shuttingDown:
            return .problem(
                status: 503, slug: "shutting-down", title: "graced is shutting down",
                detail:
                    "The service is stopping and accepts no new jobs; the jobs already accepted are cancelled.",
                resolution: "Retry when graced is back (systemd restarts it), with the same Idempotency-Key.",
                headers: [("Retry-After", "5")])
        }
    }
}

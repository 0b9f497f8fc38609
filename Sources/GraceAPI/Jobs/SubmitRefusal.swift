import Passthrough

/// Why a submission was not accepted, in the domain's words; Routes/ maps each to a status and a
/// problem (`JobProblems`).
enum SubmitRefusal: Error, Sendable {
    case deadlineOutOfRange(got: Double, minimum: Double, maximum: Double)
    case gpuNotFound(BDF)
    /// The key belongs to a job for another request (another GPU, another kind).
    case idempotencyKeyReused(key: String, job: Job)
    case gpuMissing(BDF)
    case gpuWedged(BDF)
    case kernelWritesStuck(count: Int)
    /// Another job holds (or will hold) the device.
    case busy(BDF, job: Job)
    /// The plan refused (a holder, a guard, no method).
    case plan(Refusal)
    /// The job could not be stored, so nothing was done.
    case storeUnavailable(String)
    /// Earlier job records are still waiting for the disk; no new job until they are written.
    case storeDegraded(String?)
    /// graced is shutting down.
    case shuttingDown
}

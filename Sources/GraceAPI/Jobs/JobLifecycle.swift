/// The engine's control state of one live job: one function per event, each returning what the
/// engine must do, so that every race (a cancel arriving while the job starts, twice, or after it
/// ended) has exactly one answer.
enum JobLifecycle: Sendable, Equatable {
    case queued
    case running(cancelRequested: String?)
    case finished

    enum StartAction: Equatable {
        /// Run the job's stages.
        case run
        /// It was cancelled (or ended) before a worker took it; nothing to do.
        case skip
    }

    enum CancelAction: Equatable {
        /// Never started: end it as cancelled now, no worker involved.
        case finishNow(reason: String)
        /// Running: wake its polls; the worker ends it as cancelled at the next safe point.
        case signalWorker(reason: String)
        /// Cancellation already asked; nothing more to do.
        case alreadyRequested
        /// It had ended; the API answers 409.
        case alreadyFinished
    }

    mutating func start() -> StartAction {
        switch self {
        case .queued:
            self = .running(cancelRequested: nil)
            return .run
        case .running, .finished:
            return .skip
        }
    }

    mutating func cancel(reason: String) -> CancelAction {
        switch self {
        case .queued:
            self = .finished
            return .finishNow(reason: reason)
        case .running(cancelRequested: nil):
            self = .running(cancelRequested: reason)
            return .signalWorker(reason: reason)
        case .running:
            return .alreadyRequested
        case .finished:
            return .alreadyFinished
        }
    }

    mutating func finish() {
        self = .finished
    }
}

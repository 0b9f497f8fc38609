/// Every series graced exports, with its type and help text: the one list the exposition, the README
/// table and the alert rules are checked against.
enum Metric: String, CaseIterable, Sendable {
    case buildInfo = "graceapi_build_info"
    case gpuInfo = "graceapi_gpu_info"
    case gpuState = "graceapi_gpu_state"
    case gpuHealth = "graceapi_gpu_health"
    case linkSpeed = "graceapi_gpu_link_speed_gts"
    case linkSpeedMax = "graceapi_gpu_link_speed_max_gts"
    case linkWidth = "graceapi_gpu_link_width"
    case linkWidthMax = "graceapi_gpu_link_width_max"
    case resets = "graceapi_resets_total"
    case resetDuration = "graceapi_reset_duration_seconds"
    case readinessWait = "graceapi_readiness_wait_seconds"
    case readinessDeadlineRatio = "graceapi_readiness_wait_deadline_ratio"
    case jobs = "graceapi_jobs"
    case jobsFinished = "graceapi_jobs_finished_total"
    case kernelWritesStuck = "graceapi_kernel_writes_stuck"
    case layoutDrift = "graceapi_layout_drift_total"
    case httpRequests = "graceapi_http_requests_total"
    case httpDuration = "graceapi_http_request_duration_seconds"

    enum Kind: String { case counter, gauge, histogram }

    var kind: Kind {
        switch self {
        case .resets, .jobsFinished, .layoutDrift, .httpRequests: .counter
        case .resetDuration, .readinessWait, .readinessDeadlineRatio, .httpDuration: .histogram
        default: .gauge
        }
    }

    var help: String {
        switch self {
        case .buildInfo:
            "The running graced (always 1), with its version and the git revision it was built from."
        case .gpuInfo: "A managed GPU (always 1), with its identity and the driver bound now."
        case .gpuState:
            "1 for the GPU's current state (ready, not_ready, resetting, wedged, missing, needs_reboot)."
        case .gpuHealth:
            "1 for each problem the health watch sees on the GPU now; reason=\"none\" when it sees none."
        case .linkSpeed: "Current PCI Express link speed in GT/s."
        case .linkSpeedMax: "Maximum PCI Express link speed of the GPU in GT/s."
        case .linkWidth: "Current PCI Express link width in lanes."
        case .linkWidthMax: "Maximum PCI Express link width of the GPU in lanes."
        case .resets: "Finished reset jobs by GPU, method used and outcome (the job's final state)."
        case .resetDuration: "Reset jobs from leaving the queue to their end, in seconds, by method."
        case .readinessWait:
            "Time spent waiting for a GPU to be ready after a reset or bind, by method and probe."
        case .readinessDeadlineRatio:
            "Readiness wait as a fraction of the job's whole deadline, by method and probe."
        case .jobs: "Jobs queued or running now."
        case .jobsFinished: "Finished jobs by kind, final state and the errno that failed them (none, other)."
        case .kernelWritesStuck:
            "Kernel writes still blocked after their job gave up on them; new jobs are refused at the maximum."
        case .layoutDrift: "Layout snapshots that differed from the one before (a changed BAR after a reset)."
        case .httpRequests: "HTTP answers by route template and status code."
        case .httpDuration: "Time from a request's head to its answer, by route template, in seconds."
        }
    }
}

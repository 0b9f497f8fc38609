/// The service's schema as an append-only list of migrations; see `Database.migrate`.
public enum GraceSchema {
    public static let migrations: [String] = [
        version1, version2, version3, eventsVersion, desiredBindings, rebootVerdicts, eventsByGPUAndType,
        jobsByCreation,
    ]

    /// Version 1: devices, their layout history, and the tables the jobs engine writes to.
    static let version1 = """
        CREATE TABLE devices (
            id INTEGER PRIMARY KEY,
            bdf TEXT NOT NULL,
            vendor_id TEXT NOT NULL,
            device_id TEXT NOT NULL,
            subsystem_vendor_id TEXT NOT NULL,
            subsystem_device_id TEXT NOT NULL,
            first_seen_ms INTEGER NOT NULL,
            last_seen_ms INTEGER NOT NULL,
            UNIQUE (bdf, vendor_id, device_id, subsystem_vendor_id, subsystem_device_id)
        );
        CREATE INDEX devices_by_bdf ON devices (bdf, last_seen_ms);

        CREATE TABLE layout_snapshots (
            id INTEGER PRIMARY KEY,
            device_id INTEGER NOT NULL REFERENCES devices (id),
            taken_at_ms INTEGER NOT NULL,
            layout_json TEXT NOT NULL,
            drift INTEGER NOT NULL CHECK (drift IN (0, 1)),
            change_summary TEXT
        );
        CREATE INDEX layout_snapshots_by_device ON layout_snapshots (device_id, id);

        CREATE TABLE jobs (
            id TEXT PRIMARY KEY NOT NULL,
            kind TEXT NOT NULL,
            device_id INTEGER NOT NULL REFERENCES devices (id),
            bdf TEXT NOT NULL,
            state TEXT NOT NULL,
            phase TEXT NOT NULL,
            method_requested TEXT NOT NULL,
            method_used TEXT,
            deadline_ms INTEGER NOT NULL,
            idempotency_key TEXT,
            request_json TEXT NOT NULL,
            result_json TEXT,
            error_json TEXT,
            created_at_ms INTEGER NOT NULL,
            finished_at_ms INTEGER
        );
        CREATE INDEX jobs_by_bdf ON jobs (bdf, created_at_ms);
        CREATE INDEX jobs_by_state ON jobs (state);

        CREATE TABLE job_phases (
            job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            name TEXT NOT NULL,
            started_at_ms INTEGER NOT NULL,
            ended_at_ms INTEGER,
            PRIMARY KEY (job_id, seq)
        );

        CREATE TABLE job_attempts (
            job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            at_ms INTEGER NOT NULL,
            errno INTEGER,
            message TEXT NOT NULL,
            PRIMARY KEY (job_id, seq)
        );

        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at_ms INTEGER NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            detail_json TEXT NOT NULL
        );
        """

    /// Lookups the job engine makes on every submission: a repeated Idempotency-Key, and a GPU's
    /// reset history.
    static let version2 = """
        CREATE INDEX jobs_by_idempotency_key ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
        CREATE INDEX jobs_by_bdf_kind ON jobs (bdf, kind, created_at_ms);
        """

    /// Version 3: an Idempotency-Key is reserved by a unique index (two requests racing with one key
    /// cannot both create a job), and each attempt records when its kernel write returned (null: it
    /// was issued and had not returned when the record was written, e.g. the daemon died in it).
    /// Keys doubled by earlier versions stay with their first job.
    static let version3 = """
        UPDATE jobs SET idempotency_key = NULL
            WHERE idempotency_key IS NOT NULL
            AND rowid NOT IN (
                SELECT min(rowid) FROM jobs WHERE idempotency_key IS NOT NULL GROUP BY idempotency_key);
        DROP INDEX jobs_by_idempotency_key;
        CREATE UNIQUE INDEX jobs_by_idempotency_key ON jobs (idempotency_key)
            WHERE idempotency_key IS NOT NULL;
        ALTER TABLE job_attempts ADD COLUMN returned_at_ms INTEGER;
        UPDATE job_attempts SET returned_at_ms = at_ms;
        """

    /// The event stream's log (`GET /events`). AUTOINCREMENT, unlike a plain INTEGER PRIMARY KEY,
    /// never hands out an id again after the newest rows are pruned: a client resuming with
    /// `Last-Event-ID` must never see a new event under an id it already saw.
    static let eventsVersion = """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            type TEXT NOT NULL,
            at_ms INTEGER NOT NULL,
            gpu TEXT,
            job TEXT,
            data_json TEXT NOT NULL
        );
        CREATE INDEX events_by_time ON events (at_ms);
        """

    /// The driver each function should be on, as the last bind or unbind through graced left it
    /// (`driver` null: no driver). Startup and rescans compare the host against it (reconcile).
    static let desiredBindings = """
        CREATE TABLE desired_bindings (
            bdf TEXT PRIMARY KEY,
            driver TEXT,
            job_id TEXT,
            set_at_ms INTEGER NOT NULL
        );
        """

    /// A resume filtered by GPU or type reads only the events it wants: its cost follows what it
    /// gets, not the size of the log (a filter that matched nothing read every retained event).
    static let eventsByGPUAndType = """
        CREATE INDEX events_by_gpu ON events (gpu, id);
        CREATE INDEX events_by_type ON events (type, id);
        """

    /// `GET /jobs` without a filter pages newest first by (created_at_ms, id): read from an index, not
    /// by sorting the whole table (38 ms a request at the default 100,000 jobs, measured by the soak).
    static let jobsByCreation = """
        CREATE INDEX jobs_by_creation ON jobs (created_at_ms, id);
        """

    /// GPUs an escalating reset gave up on (`needs_reboot`), with the boot they were given up in.
    static let rebootVerdicts = """
        CREATE TABLE reboot_verdicts (
            bdf TEXT PRIMARY KEY,
            boot_id TEXT NOT NULL,
            job_id TEXT NOT NULL,
            at_ms INTEGER NOT NULL
        );
        """
}

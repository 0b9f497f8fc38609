import GraceHTTP
import Store

/// `GET /audit`: the audit trail, newest first (admin only).
enum AuditRoutes {
    struct Entry: Encodable {
        var id: Int64
        var at: String
        /// Who: `token:NAME`, `uid:U pid:P (unverified: comm)`, `cert:SUBJECT`, `anonymous@ADDRESS`, or `graced`.
        var actor: String
        /// `POST /gpus/{bdf}/reset`, or `job.reset` for a job's outcome.
        var action: String
        var target: String
        /// The answer's status; null while the request was being handled (or for job outcomes).
        var status: Int?
        var job: String?
        var channel: String?
        var role: String?
        var source: String?
        var repeated: Int
        var lastAt: String?
        var rawTarget: String?

        private enum CodingKeys: String, CodingKey {
            case id, at, actor, action, target, status, job, channel, role, source, repeated, lastAt,
                rawTarget
        }

        /// Every field, null when it does not apply: the contract lists them all.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(at, forKey: .at)
            try container.encode(actor, forKey: .actor)
            try container.encode(action, forKey: .action)
            try container.encode(target, forKey: .target)
            try container.encode(status, forKey: .status)
            try container.encode(job, forKey: .job)
            try container.encode(channel, forKey: .channel)
            try container.encode(role, forKey: .role)
            try container.encode(source, forKey: .source)
            try container.encode(repeated, forKey: .repeated)
            try container.encode(lastAt, forKey: .lastAt)
            try container.encode(rawTarget, forKey: .rawTarget)
        }
    }

    struct Page: Encodable {
        var items: [Entry]
        /// Pass as `before` for the next page; null on the last one.
        var next: String?

        private enum CodingKeys: String, CodingKey { case items, next }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(items, forKey: .items)
            try container.encode(next, forKey: .next)
        }
    }

    static func register(in router: inout Router, store: GraceStore) {
        router.get("/audit", role: .admin) { request, _ in
            let limit: Int
            let before: Int64?
            switch (
                Paging.limit(request), Paging.cursor(request, { Int64($0).flatMap { $0 > 0 ? $0 : nil } })
            ) {
            case (.failure(let problem), _), (_, .failure(let problem)): return .respond(problem.response)
            case (.success(let parsedLimit), .success(let parsedBefore)):
                limit = parsedLimit
                before = parsedBefore
            }
            do {
                let entries = try store.auditEntries(limit: limit, beforeId: before)
                let next = entries.count == limit ? entries.last.map { String($0.id) } : nil
                return .respond(
                    .json(
                        Page(items: entries.map(entry), next: next), headers: [("Cache-Control", "no-store")])
                )
            } catch {
                return .respond(
                    .problem(
                        status: 503, slug: "store-unavailable", title: "Could not read the audit trail",
                        detail: "The audit trail could not be read: \(error).",
                        resolution: "Retry shortly; check the database's disk."))
            }
        }
    }

    private static func entry(_ line: AuditEntry) -> Entry {
        let detail = try? JSON.decode(StoreAuditor.Detail.self, from: Array(line.detailJSON.utf8))
        return Entry(
            id: line.id, at: Timestamp.rfc3339(ms: line.atMs), actor: line.actor, action: line.action,
            target: line.target, status: detail?.status, job: detail?.job, channel: detail?.channel,
            role: detail?.role, source: detail?.source, repeated: detail?.repeated ?? 0,
            lastAt: detail?.lastAtMs.map(Timestamp.rfc3339(ms:)), rawTarget: detail?.rawTarget)
    }
}

/// A GPU an escalating reset gave up on, and the boot it happened in: the verdict holds until the
/// host boots again (or a reset of the GPU succeeds), whether or not graced restarts meanwhile.
public struct RebootVerdict: Sendable, Hashable {
    public var bdf: String
    /// The kernel's `boot_id` when the verdict was given.
    public var bootId: String
    /// The escalating reset that gave up.
    public var jobId: String
    public var atMs: Int64

    public init(bdf: String, bootId: String, jobId: String, atMs: Int64) {
        self.bdf = bdf
        self.bootId = bootId
        self.jobId = jobId
        self.atMs = atMs
    }
}

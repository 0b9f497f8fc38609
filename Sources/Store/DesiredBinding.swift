/// The driver a function should be on, as the last bind or unbind through graced left it.
public struct DesiredBinding: Sendable, Hashable {
    public var bdf: String
    /// Nil: the function should have no driver.
    public var driver: String?
    /// The job that set it.
    public var jobId: String?
    public var setAtMs: Int64

    public init(bdf: String, driver: String?, jobId: String?, setAtMs: Int64) {
        self.bdf = bdf
        self.driver = driver
        self.jobId = jobId
        self.setAtMs = setAtMs
    }
}

/// A sysfs write as a plan shows it in JSON: the attribute and the bytes, so a dry run says exactly
/// what would be written.
struct PlannedWrite: Encodable {
    var path: String
    var value: String

    init(_ write: SysfsWrite) {
        path = write.path
        value = write.value
    }
}

import CSQLite

/// A prepared statement. Parameters are numbered from 1 and columns from 0, as in SQLite itself.
///
/// Noncopyable so that exactly one owner finalizes it. Obtain it from a `Connection` and let it
/// die inside the same `withConnection` / `transaction` closure: the handle is only safe to use
/// while that closure holds the database lock.
public struct Statement: ~Copyable {
    let handle: OpaquePointer
    public let sql: String

    init(handle: OpaquePointer, sql: String) {
        self.handle = handle
        self.sql = sql
    }

    deinit {
        sqlite3_finalize(handle)
    }

    /// Ends the statement now rather than at the end of the scope.
    public consuming func finalize() {}

    // MARK: Binding

    public func bind(_ value: SQLValue, at index: Int32) throws(DatabaseError) {
        let code: Int32
        switch value {
        case .integer(let number):
            code = sqlite3_bind_int64(handle, index, number)
        case .real(let number):
            code = sqlite3_bind_double(handle, index, number)
        case .text(let text):
            code = text.withCString { pointer in
                sqlite3_bind_text64(
                    handle, index, pointer, sqlite3_uint64(text.utf8.count), grace_sqlite_transient(),
                    UInt8(SQLITE_UTF8))
            }
        case .blob(let bytes):
            if bytes.isEmpty {
                // A nil data pointer would bind NULL, and an empty array has no base address.
                code = sqlite3_bind_zeroblob(handle, index, 0)
            } else {
                code = bytes.withUnsafeBytes { raw in
                    sqlite3_bind_blob64(
                        handle, index, raw.baseAddress, sqlite3_uint64(raw.count), grace_sqlite_transient())
                }
            }
        case .null:
            code = sqlite3_bind_null(handle, index)
        }
        try check(code)
    }

    /// Binds `values` to parameters 1, 2, ... in order.
    public func bind(_ values: [SQLValue]) throws(DatabaseError) {
        for (offset, value) in values.enumerated() {
            try bind(value, at: Int32(offset + 1))
        }
    }

    public var parameterCount: Int32 { sqlite3_bind_parameter_count(handle) }

    public func clearBindings() {
        sqlite3_clear_bindings(handle)
    }

    // MARK: Stepping

    /// Advances to the next row: `true` when a row is available, `false` when the statement is done.
    @discardableResult
    public func step() throws(DatabaseError) -> Bool {
        let code = sqlite3_step(handle)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw DatabaseError.last(sqlite3_db_handle(handle), code: code, sql: sql)
        }
    }

    /// Rewinds so the statement can run again; bindings are kept.
    public func reset() {
        // The result repeats the error of the last step, which `step()` already threw.
        sqlite3_reset(handle)
    }

    // MARK: Columns

    public var columnCount: Int32 { sqlite3_column_count(handle) }

    public func columnName(at index: Int32) -> String {
        sqlite3_column_name(handle, index).map { String(cString: $0) } ?? ""
    }

    public func isNull(at index: Int32) -> Bool {
        sqlite3_column_type(handle, index) == SQLITE_NULL
    }

    /// The column as an integer; NULL reads as 0, following SQLite's conversion rules.
    public func int64(at index: Int32) -> Int64 {
        sqlite3_column_int64(handle, index)
    }

    public func optionalInt64(at index: Int32) -> Int64? {
        isNull(at: index) ? nil : int64(at: index)
    }

    public func double(at index: Int32) -> Double {
        sqlite3_column_double(handle, index)
    }

    public func bool(at index: Int32) -> Bool {
        int64(at: index) != 0
    }

    /// The column as text, or nil when it is NULL.
    public func string(at index: Int32) -> String? {
        // Text pointer first, then its length: the order SQLite documents for a stable length.
        guard let pointer = sqlite3_column_text(handle, index) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, index))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    /// The column as bytes, or nil when it is NULL. An empty blob reads as `[]`.
    public func blob(at index: Int32) -> [UInt8]? {
        if isNull(at: index) { return nil }
        guard let pointer = sqlite3_column_blob(handle, index) else { return [] }
        let count = Int(sqlite3_column_bytes(handle, index))
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    /// The column with its stored type.
    public func value(at index: Int32) -> SQLValue {
        switch sqlite3_column_type(handle, index) {
        case SQLITE_INTEGER: .integer(int64(at: index))
        case SQLITE_FLOAT: .real(double(at: index))
        case SQLITE_TEXT: string(at: index).map { .text($0) } ?? .null
        case SQLITE_BLOB: blob(at: index).map { .blob($0) } ?? .null
        default: .null
        }
    }

    private func check(_ code: Int32) throws(DatabaseError) {
        guard code == SQLITE_OK else {
            throw DatabaseError.last(sqlite3_db_handle(handle), code: code, sql: sql)
        }
    }
}

import Passthrough

#if canImport(Glibc)
    import Glibc
#endif

/// Runs the project's own executables (graced, gracectl) as child processes, their output to a file.
enum ChildProcess {
    static func binary(_ name: String) -> String { ContractTests.repositoryRoot + "/.build/debug/" + name }

    /// Starts `arguments[0]` with stdout and stderr appended to `output`.
    static func spawn(_ arguments: [String], output: String) throws -> pid_t {
        try spawn(arguments) { actions in
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
    }

    /// Starts `arguments[0]` with stdout and stderr kept apart, each in a new file (mode 0600).
    static func spawn(_ arguments: [String], stdout: String, stderr: String) throws -> pid_t {
        try spawn(arguments) { actions in
            posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        }
    }

    private static func spawn(
        _ arguments: [String], redirect: (inout posix_spawn_file_actions_t) -> Void
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        redirect(&actions)
        var argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child = pid_t()
        let spawned = posix_spawn(&child, arguments[0], &actions, nil, &argv, environ)
        guard spawned == 0 else { throw KernelError(code: spawned, path: arguments[0]) }
        return child
    }

    /// Waits for the child; returns its exit status (128 + signal when killed).
    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Runs to the end; returns the exit status and everything it printed.
    static func run(_ arguments: [String], in folder: String) throws -> (status: Int32, output: String) {
        let output = folder + "/child-\(UInt32.random(in: 0...UInt32.max)).log"
        let status = wait(try spawn(arguments, output: output))
        return (status, read(output))
    }

    static func read(_ path: String) -> String {
        String(decoding: (try? SysfsRoot(path: "/").readBytes(String(path.dropFirst()))) ?? [], as: UTF8.self)
    }
}

import ArgumentParser
import GraceAPI
import GraceHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// `graced token create|list|revoke`: manages the token file the service reads.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Create, list and revoke the bearer tokens graced accepts.",
        discussion:
            "The token file holds a salted SHA-256 hash of each token, never the token itself. It must be a "
            + "regular file owned by the user graced runs as (root), with mode 0600.",
        subcommands: [Create.self, List.self, Revoke.self])

    struct FileOption: ParsableArguments {
        @Option(help: ArgumentHelp("The token file.", valueName: "path"))
        var tokens = TokenFile.defaultPath
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a token and print it (it is shown only this once).",
            discussion: "Only the token goes to stdout, so that TOKEN=$(graced token create ...) captures it."
        )

        @OptionGroup var file: FileOption

        @Option(help: ArgumentHelp("Who the token is for: 1 to 64 of A-Z a-z 0-9 . _ @ -", valueName: "name"))
        var name: String

        @Option(help: ArgumentHelp("What the token may do.", valueName: "role"))
        var role: Role

        func validate() throws {
            guard TokenFile.isValidName(name) else {
                throw ValidationError(
                    "--name takes 1 to 64 characters of A-Z a-z 0-9 . _ @ - (got '\(name)')")
            }
        }

        func run() throws {
            let token = try TokenFile.create(path: file.tokens, name: name, role: role)
            print(token)
            note(
                "stored a salted hash for \(name) (\(role.rawValue)) in \(file.tokens); "
                    + "this token is shown only once")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the tokens' names, roles and creation times.")

        @OptionGroup var file: FileOption

        func run() throws {
            let records = try TokenFile.list(path: file.tokens)
            let rows =
                [["NAME", "ROLE", "CREATED"]] + records.map { [$0.name, $0.role.rawValue, $0.createdAt] }
            let widths = (0..<2).map { column in rows.map { $0[column].count }.max() ?? 0 }
            for row in rows {
                print(
                    row[0].padding(to: widths[0]) + "  " + row[1].padding(to: widths[1]) + "  " + row[2])
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a token so it is no longer accepted.")

        @OptionGroup var file: FileOption

        @Argument(help: ArgumentHelp("The token's name.", valueName: "name"))
        var name: String

        func run() throws {
            try TokenFile.revoke(path: file.tokens, name: name)
            note("removed the token \(name) from \(file.tokens)")
        }
    }
}

// Here rather than beside Role: the library does not depend on ArgumentParser.
extension Role: ExpressibleByArgument {}

/// A line for the person at the terminal, kept off stdout so that stdout carries only the result.
private func note(_ text: String) {
    let line = Array((text + "\n").utf8)
    _ = line.withUnsafeBytes { raw in write(STDERR_FILENO, raw.baseAddress, raw.count) }
}

extension String {
    fileprivate func padding(to width: Int) -> String {
        self + String(repeating: " ", count: max(0, width - count))
    }
}

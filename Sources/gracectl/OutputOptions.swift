import ArgumentParser
import GraceClient

/// How a command prints what graced answered: a table for people, or the API's own JSON, byte for
/// byte as graced served it, for scripts and jq.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table
    case json
}

struct OutputOptions: ParsableArguments {
    @Option(
        name: [.customShort("o"), .long],
        help: ArgumentHelp(
            "table, or json: the API's own objects exactly as graced served them (one per line for watch).",
            valueName: "format"))
    var output: OutputFormat = .table

    var isJSON: Bool { output == .json }

    /// Prints an answer's body as served.
    func printBody(_ response: BlockingHTTPClient.Response) {
        print(response.text)
    }
}

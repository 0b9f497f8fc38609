import ArgumentParser
import BuildInfo

/// The daemon's entry point: `graced [serve] OPTIONS` runs the service; `graced token ...` manages
/// the bearer tokens it accepts.
@main
struct Graced: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graced",
        abstract: "Manage the GPUs of a passthrough host over a REST API.",
        version: BuildInfo.versionLine("graced"),
        subcommands: [Serve.self, TokenCommand.self, CaptureCommand.self],
        defaultSubcommand: Serve.self)
}

import Foundation
import PackagePlugin

/// Bakes the source revision (the git commit the build was made from) into the target as a Swift
/// constant, so `--version`, `/healthz` and `graceapi_build_info` name it without reading the
/// repository at run time, and no generated file sits in git going stale.
///
/// A prebuild command, not a build command: a build command reruns only when its declared inputs
/// change, and no file it could declare changes on every commit (`.git/HEAD` names a branch, the
/// branch's ref may be packed, a worktree's `.git` is a file). A prebuild command runs at the start
/// of every build; it rewrites the file only when the revision changed, so an unchanged tree
/// compiles nothing again. Outside a git checkout (a source tarball) the revision is "unknown".
@main
struct SourceRevision: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "Generated")
        let file = output.appending(path: "SourceRevision.swift").path(percentEncoded: false)
        let package = context.package.directoryURL.path(percentEncoded: false)
        // `GRACE_SOURCE_REVISION` wins, for builds from an exported tree that know their commit.
        let script = """
            set -eu
            revision="$3"
            if [ -z "$revision" ]; then
              revision=$(git -C "$1" rev-parse --short HEAD 2>/dev/null || true)
              if [ -n "$revision" ] && [ -n "$(git -C "$1" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
                revision="$revision-dirty"
              fi
            fi
            case "$revision" in
              *[!0-9a-zA-Z.-]*|"") revision=unknown ;;
            esac
            mkdir -p "$(dirname "$2")"
            new="$2.new"
            printf '%s\\n%s\\n%s\\n' \\
              '// Written by the SourceRevision plugin at build time; not in git.' \\
              '/// The git commit this binary was built from ("-dirty" with uncommitted changes).' \\
              "let sourceRevision = \\"$revision\\"" > "$new"
            if cmp -s "$new" "$2"; then rm -f "$new"; else mv "$new" "$2"; fi
            """
        return [
            .prebuildCommand(
                displayName: "Source revision for \(target.name)",
                executable: URL(filePath: "/bin/sh"),
                arguments: [
                    "-c", script, "source-revision", package, file,
                    ProcessInfo.processInfo.environment["GRACE_SOURCE_REVISION"] ?? "",
                ],
                outputFilesDirectory: output)
        ]
    }
}

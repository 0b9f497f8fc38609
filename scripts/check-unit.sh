#!/usr/bin/env bash
# Checks the systemd unit: `systemd-analyze verify` must report nothing about it, and
# `systemd-analyze security` must rate its exposure at most 3.5. Needs no running systemd (works in
# a container) and installs nothing but Debian's systemd package, only when systemd-analyze is missing.
# Usage: scripts/check-unit.sh [UNIT_FILE]   (default: deploy/graced.service)
set -euo pipefail

limit=3.5
threshold=35 # the same limit for --threshold=, which counts in tenths

unit=${1:-"$(dirname "$0")/../deploy/graced.service"}
if [ ! -f "$unit" ]; then
    echo "check-unit: no unit file at $unit" >&2
    exit 1
fi
name=$(basename "$unit")

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "check-unit: systemd-analyze is missing; installing Debian's systemd package"
    sudo=""
    uid=$(id -u)
    if [ "$uid" -ne 0 ]; then sudo="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends systemd >/dev/null
    if ! command -v systemd-analyze >/dev/null 2>&1; then
        echo "check-unit: systemd-analyze is still missing after installing systemd" >&2
        exit 1
    fi
fi

# verify --root= and security --offline= / --threshold= all came with systemd 250.
version=$(systemd-analyze --version | awk 'NR == 1 { print $2 }')
case $version in
    '' | *[!0-9]*)
        echo "check-unit: cannot read the systemd version from systemd-analyze --version" >&2
        exit 1
        ;;
    *) ;;
esac
if [ "$version" -lt 250 ]; then
    echo "check-unit: systemd $version is too old (250 or later is needed)" >&2
    exit 1
fi

# No colours or pager: the output is parsed below.
export SYSTEMD_COLORS=0 SYSTEMD_PAGER=

# verify insists that ExecStart's binary exists. Rather than install anything on this machine, build a
# throwaway root holding the unit where it would be installed, an executable placeholder for each
# command it runs, and systemd's own units (the default dependencies on sysinit.target and friends).
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/etc/systemd/system"
cp "$unit" "$root/etc/systemd/system/$name"
# Keep merged-/usr links, so that absolute symlinks among systemd's units resolve inside the root.
for link in /bin /sbin /lib /lib64; do
    [ -L "$link" ] || continue
    target=$(readlink "$link")
    ln -s "$target" "$root$link"
done
for dir in /usr/lib/systemd/system /lib/systemd/system; do
    [ -d "$dir" ] || continue
    real=$(readlink -f "$dir")
    [ -d "$root$real" ] && continue
    mkdir -p "$root$real"
    cp -a "$real/." "$root$real/"
done
commands=$(sed -n 's/^Exec[A-Za-z]*=[-@:+!|]*\([^[:space:]]*\).*/\1/p' "$unit" | sort -u)
while IFS= read -r command; do
    case $command in
        /*) ;;
        *) continue ;; # a bare name is looked up in systemd's search path, which verify checks itself
    esac
    # /bin may be a link to usr/bin inside the root: make the folder it leads to.
    folder=$(readlink -m "$(dirname "$command")")
    mkdir -p "$root$folder"
    printf '#!/bin/sh\nexit 0\n' >"$root$command"
    chmod 755 "$root$command"
done <<<"$commands"

echo "== $name: systemd-analyze --root=$root verify $root/etc/systemd/system/$name"
echo "   (placeholders for: ${commands//$'\n'/ }; systemd's units copied from this machine)"
status=0
verify=$(systemd-analyze --root="$root" verify "$root/etc/systemd/system/$name" 2>&1) || status=$?
if [ -n "$verify" ]; then printf '%s\n' "$verify"; fi
# verify exits 0 after many warnings (an unknown key, a value it cannot parse): any line about the unit
# is a failure too.
if [ "$status" -ne 0 ] || printf '%s\n' "$verify" | grep -qF "$name"; then
    echo "check-unit: systemd-analyze verify found problems in $name (exit status $status)" >&2
    exit 1
fi
echo "verify ok"

echo "== $name: systemd-analyze security --offline=yes --threshold=$threshold --root=$root --no-pager $name"
status=0
security=$(systemd-analyze security --offline=yes --threshold="$threshold" --root="$root" \
    --no-pager "$name" 2>&1) || status=$?
# The rows that still cost exposure (they end in their share), then the verdict.
printf '%s\n' "$security" | grep -E '[0-9]\.[0-9][[:space:]]*$' || true
printf '%s\n' "$security" | grep -F 'Overall exposure level' || true
exposure=$(printf '%s\n' "$security" |
    sed -n "s/.*Overall exposure level for ${name//./\\.}: \([0-9][0-9.]*\).*/\1/p")
if [ -z "$exposure" ]; then
    echo "check-unit: no overall exposure in the output of systemd-analyze security" >&2
    exit 1
fi
if awk -v exposure="$exposure" -v limit="$limit" 'BEGIN { exit !(exposure > limit) }'; then
    echo "check-unit: exposure $exposure (limit $limit)" >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "check-unit: systemd-analyze security failed (exit status $status) at exposure $exposure" >&2
    exit 1
fi
echo "exposure $exposure (limit $limit)"

echo "unit: exposure $exposure, verify ok"

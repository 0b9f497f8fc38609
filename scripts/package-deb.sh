#!/usr/bin/env bash
# Builds the Debian package graced_<version>_<arch>.deb: graced and gracectl (release, Swift stdlib
# linked statically), the systemd unit, the graced group (sysusers.d), /etc/default/graced, man pages
# made from --help, shell completions for bash, zsh and fish, and the README.
#
# Why dpkg-deb and not dpkg-buildpackage/debhelper: SwiftPM does the build, so debhelper would only
# copy files and write maintainer scripts here, at the cost of a debian/ tree (rules, compat, control,
# changelog, install lists) kept in step with the Swift sources, and of build dependencies that
# dpkg-checkbuilddeps cannot satisfy (the Swift toolchain is not a Debian package). One script that
# lays out the package root, with a hand-written DEBIAN/control, conffiles, postinst and postrm, is
# the whole of it; lintian checks the result the same way.
#
# Usage: scripts/package-deb.sh [--out DIR]   (default: .build-deb; prints the .deb's path last)
set -euo pipefail
cd "$(dirname "$0")/.."
# Files and folders made below get 0644 and 0755 whatever the caller's umask.
umask 0022
# The help texts hold UTF-8 (µs); in the C locale they would come out as question marks.
export LC_ALL=C.UTF-8

out=.build-deb
while [ $# -gt 0 ]; do
    case $1 in
        --out)
            out=${2:?--out needs a folder}
            shift 2
            ;;
        *)
            echo "usage: scripts/package-deb.sh [--out DIR]" >&2
            exit 64
            ;;
    esac
done

./scripts/install-deps.sh

# Its own scratch path: a release build must not evict the debug build the tests use.
scratch=.build-release
# The SourceRevision plugin's prebuild command runs only when SwiftPM plans the build, and SwiftPM
# reuses a saved plan while the package's files stay the same: after a commit that changed nothing
# it would leave the previous revision in --version. Dropping the plan makes it plan (seconds).
rm -f "$scratch/release/description.json"
for product in graced gracectl; do
    echo "== package: swift build -c release --static-swift-stdlib --product $product"
    swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product "$product"
done
bin=$(swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)

# `graced 0.1.0 (abc1234)`: the version is the second word.
version=$("$bin/graced" --version | awk '{ print $2 }')
case $version in
    [0-9]*) ;;
    *)
        echo "package-deb: cannot read a version from \`graced --version\`" >&2
        exit 1
        ;;
esac
# The revision the binaries carry must be this tree's, as the plugin computes it.
expected=${GRACE_SOURCE_REVISION:-$(git rev-parse --short HEAD)}
if [ -z "${GRACE_SOURCE_REVISION:-}" ] && [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    expected="$expected-dirty"
fi
for command in graced gracectl; do
    if ! "$bin/$command" --version | grep -qF "($expected)"; then
        echo "package-deb: $command --version says $("$bin/$command" --version), not revision $expected" >&2
        exit 1
    fi
done
arch=$(dpkg --print-architecture)
maintainer=${DEB_MAINTAINER:-$(git log -1 --format='%an <%ae>')}
# The last commit's date, so that a rebuild of the same commit makes the same changelog and mtimes.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/DEBIAN"
# mktemp made $work 0700; the package's / must be 0755 like every other folder in it.
chmod 0755 "$root"

# Binaries, without symbols: lintian wants them stripped, and the static stdlib makes them large.
for command in graced gracectl; do
    install -D -m 0755 "$bin/$command" "$root/usr/bin/$command"
    strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/bin/$command"
done

# The unit names /usr/local/bin/graced, where the README's manual install puts it (and check-unit.sh
# checks it there); the package installs to /usr/bin. Bookworm's packages keep units in /lib.
unit=$root/lib/systemd/system/graced.service
mkdir -p "$(dirname "$unit")"
sed 's#/usr/local/bin/graced#/usr/bin/graced#g' deploy/graced.service >"$unit"
chmod 0644 "$unit"
if ! grep -q '^ExecStart=/usr/bin/graced ' "$unit" || grep -q /usr/local/bin "$unit"; then
    echo "package-deb: deploy/graced.service no longer runs /usr/local/bin/graced; update the sed above" >&2
    exit 1
fi

install -D -m 0644 deploy/graced.default "$root/etc/default/graced"
echo /etc/default/graced >"$root/DEBIAN/conffiles"

# The group whose members may use the socket (graced makes it 0660, group graced).
install -d -m 0755 "$root/usr/lib/sysusers.d"
printf '# The group whose members may call graced on its Unix socket.\ng graced - -\n' \
    >"$root/usr/lib/sysusers.d/graced.conf"
chmod 0644 "$root/usr/lib/sysusers.d/graced.conf"

# Completions, as swift-argument-parser generates them.
for command in graced gracectl; do
    install -d -m 0755 "$root/usr/share/bash-completion/completions" \
        "$root/usr/share/zsh/vendor-completions" "$root/usr/share/fish/vendor_completions.d"
    # bash-completion sources these files: a #! line would only mislead (lintian warns about it).
    "$bin/$command" --generate-completion-script bash | sed '1{/^#!/d}' \
        >"$root/usr/share/bash-completion/completions/$command"
    "$bin/$command" --generate-completion-script zsh >"$root/usr/share/zsh/vendor-completions/_$command"
    "$bin/$command" --generate-completion-script fish \
        >"$root/usr/share/fish/vendor_completions.d/$command.fish"
done

# Man pages: help2man turns the top-level --help into the page; each subcommand's own help follows
# it as a section of its own, as preformatted text (roff escapes for backslashes and leading dots).
install -d -m 0755 "$root/usr/share/man/man1"
for command in graced gracectl; do
    include=$work/$command.h2m
    : >"$include"
    subcommands=$("$bin/$command" --help |
        awk '/^SUBCOMMANDS:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^[^ ]/ { on = 0 }')
    for subcommand in $subcommands; do
        {
            printf '[%s %s]\n.nf\n' "$(echo "$command" | tr a-z A-Z)" "$(echo "$subcommand" | tr a-z A-Z)"
            "$bin/$command" help "$subcommand" | sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"
            printf '.fi\n'
        } >>"$include"
    done
    case $command in
        graced) summary="manage the GPUs of a passthrough host over a REST API" ;;
        gracectl) summary="talk to graced: list, reset, bind and unbind GPUs, follow jobs" ;;
    esac
    help2man --no-info --no-discard-stderr --section=1 --name="$summary" --include="$include" \
        --output="$work/$command.1" "$bin/$command"
    gzip -9n <"$work/$command.1" >"$root/usr/share/man/man1/$command.1.gz"
    chmod 0644 "$root/usr/share/man/man1/$command.1.gz"
done

# The README (its quick start, the Debian package's section and the operator's reference in one), a
# copyright file and the changelog Debian policy asks every package for.
doc=$root/usr/share/doc/graced
install -D -m 0644 README.md "$doc/README.md"
cat >"$doc/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: graceapi
Source: https://github.com/graceapi/graceapi

Files: *
Copyright: 2026 The GraceAPI authors
License: unspecified
 The GraceAPI source tree carries no licence statement yet; until it does, no
 licence is granted beyond what the authors state elsewhere.

Files: usr/bin/graced usr/bin/gracectl
Copyright: 2014-2026 Apple Inc. and the Swift project authors
License: Apache-2.0 WITH Swift-exception
 The binaries also hold, linked statically, the Swift standard library and
 runtime, Foundation, swift-argument-parser, swift-log, swift-metrics and
 swift-prometheus, under the Apache License 2.0 (the Swift runtime with its
 Runtime Library Exception).
 .
 On Debian systems, the complete text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF
chmod 0644 "$doc/copyright"
{
    echo "graced ($version) unstable; urgency=medium"
    echo
    echo "  * Built from $(git describe --always --dirty) by scripts/package-deb.sh."
    echo
    echo " -- $maintainer  $(date -R -u -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"

cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
# Creates the graced group and tells a running systemd about the unit. The service is neither
# enabled nor started: the operator enables it (systemctl enable --now graced).
set -e
if [ "$1" = configure ]; then
    if command -v systemd-sysusers >/dev/null 2>&1; then
        systemd-sysusers graced.conf
    elif ! getent group graced >/dev/null; then
        groupadd --system graced
    fi
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
    fi
fi
EOF
cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
# Purge also deletes the database; a plain remove keeps it. The graced group stays, as Debian keeps
# system groups (files owned by it may remain).
set -e
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = purge ]; then
    rm -rf /var/lib/graced
fi
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"

# Runtime libraries, as dpkg-shlibdeps finds them (it wants a debian/control to read, so a stub),
# plus pci.ids, which libpci reads at run time without linking it, and procps for the unit's
# ExecReload=/bin/kill (a minimal Debian has no /bin/kill; check-package.sh found it missing).
mkdir -p "$work/shlibs/debian"
printf 'Source: graced\n\nPackage: graced\nArchitecture: any\n' >"$work/shlibs/debian/control"
shlibs=$(cd "$work/shlibs" && dpkg-shlibdeps -O "$root/usr/bin/graced" "$root/usr/bin/gracectl")
depends=${shlibs#shlibs:Depends=}
if [ -z "$depends" ] || [ "$depends" = "$shlibs" ]; then
    echo "package-deb: dpkg-shlibdeps printed no dependencies ($shlibs)" >&2
    exit 1
fi
depends="$depends, pci.ids, procps"

installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: graced
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $depends
Section: admin
Priority: optional
Homepage: https://github.com/graceapi/graceapi
Description: GPU management daemon for VFIO passthrough hosts
 graced is a REST service that lists a passthrough host's GPUs with their
 IOMMU groups, links, reset methods, BARs and device-memory layout, records
 every layout in SQLite, and resets, binds and unbinds GPUs as cancellable,
 verified jobs. gracectl is its command-line client.
 .
 The service is installed but not enabled: run systemctl enable --now graced.
EOF

# Every file root's and no more writable than its mode above; the same mtime for all of them.
find "$root" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
deb=$out/graced_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null

echo "== package: lintian $deb (errors fail; warnings are listed)"
status=0
lintian --tag-display-limit 0 "$deb" || status=$?
# lintian exits 1 for errors only (its default --fail-on=error).
if [ "$status" -ne 0 ]; then
    echo "package-deb: lintian reports errors in $deb" >&2
    exit 1
fi
echo "$deb"

#!/usr/bin/env bash
# Checks the Debian package the way an operator meets it: installs it with `apt-get install
# ./graced_*.deb` into a clean Debian 12 root (debootstrap --variant=minbase, entered with chroot),
# checks every file's place, owner and mode, runs graced and gracectl from it, verifies the installed
# unit with systemd-analyze, then removes the package (nothing may stay but the database, and the
# conffile dpkg keeps until a purge) and purges it (the database goes too).
#
# The root's packages are downloaded once into .build-debootstrap/ (debootstrap --make-tarball);
# later runs unpack that tarball, so only the mirror's indexes and the package's dependencies are
# fetched again. Needs root (chroot, mounting /proc) and the network (the Debian mirror apt uses).
#
# Usage: scripts/check-package.sh [DEB]   (without DEB: builds it with scripts/package-deb.sh)
set -euo pipefail
started=$(date +%s)
# A DEB given relative to the caller's folder, before leaving it.
deb=${1:+$(realpath "$1")}
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "check-package: needs root (debootstrap, chroot)" >&2
    exit 1
fi

if [ -z "$deb" ]; then
    # package-deb.sh prints the path last. (tee to a file of our own: tee /dev/stderr would reopen,
    # and so truncate, a log file the caller redirected both streams to.)
    built=$(mktemp)
    ./scripts/package-deb.sh | tee "$built"
    deb=$PWD/$(tail -n 1 "$built")
    rm -f "$built"
fi
if [ ! -f "$deb" ]; then
    echo "check-package: no package at $deb" >&2
    exit 1
fi
./scripts/install-deps.sh
version=$(dpkg-deb -f "$deb" Version)
depends=$(dpkg-deb -f "$deb" Depends)

# The Debian mirror this machine's apt uses for bookworm (deb822 .sources or a one-line list).
mirror=${GRACED_DEB_MIRROR:-}
if [ -z "$mirror" ]; then
    mirror=$(
        {
            awk '/^URIs:/ { uris = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") print uris }
                 /^$/ { uris = "" }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
            awk '$1 == "deb" && $3 == "bookworm" { print $2 }' /etc/apt/sources.list \
                /etc/apt/sources.list.d/*.list 2>/dev/null || true
        } | head -n 1
    )
fi
mirror=${mirror:-http://deb.debian.org/debian}

cache=$PWD/.build-debootstrap/bookworm-minbase.tgz
mkdir -p "$(dirname "$cache")"
if [ ! -f "$cache" ]; then
    echo "== package: debootstrap --make-tarball (once; cached in $cache) from $mirror"
    scratch=$(mktemp -d)
    debootstrap --variant=minbase --make-tarball="$cache.part" bookworm "$scratch" "$mirror" >/dev/null
    rm -rf "$scratch"
    mv "$cache.part" "$cache"
fi

dir=$(mktemp -d /var/tmp/graced-root.XXXXXX)
# mktemp makes it 0700; as the root's / it must be 0755 (apt's _apt user downloads through it).
chmod 0755 "$dir"
work=$(mktemp -d)
cleanup() {
    # Unmount first; never delete through a mount that is still there.
    if mountpoint -q "$dir/proc"; then umount "$dir/proc"; fi
    if findmnt -rn -o TARGET | grep -q "^$dir/"; then
        echo "check-package: $dir still has mounts; left in place" >&2
    else
        rm -rf "$dir"
    fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "== package: debootstrap --unpack-tarball into $dir"
debootstrap --variant=minbase --unpack-tarball="$cache" bookworm "$dir" "$mirror" >/dev/null
cp /etc/resolv.conf "$dir/etc/resolv.conf"
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" >"$dir/etc/apt/sources.list"
# Without /dev/pts in the root dpkg cannot log through a pseudo-terminal; it needs none.
echo 'Dpkg::Use-Pty "0";' >"$dir/etc/apt/apt.conf.d/90no-pty"
mount -t proc proc "$dir/proc"

in_root() {
    chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive "$@"
}
fail() {
    echo "check-package: $*" >&2
    exit 1
}
# Every path in the root but the ones apt, dpkg and the kernel change on their own.
tree() {
    (cd "$dir" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./run -o \
        -path ./tmp -o -path ./var/cache -o -path ./var/lib/apt -o -path ./var/lib/dpkg -o \
        -path ./var/log \) -prune -o -print | sort)
}
# The paths of tree() that differ from the snapshot in $1, less those allowed by the pattern in $2.
changed_since() {
    diff "$1" <(tree) | sed -n 's/^[<>] //p' | grep -Ev "$2" || true
}

echo "== package: apt-get update; the package's dependencies first, so that only its own traces are compared"
in_root apt-get update -qq
in_root apt-get satisfy -y -qq --no-install-recommends "$depends" >/dev/null
# groupadd's backups of the files it edits (the group itself stays after a purge, as in Debian).
shadow_backups='^\./etc/(group|gshadow)-$'
tree >"$work/before"

name=$(basename "$deb")
echo "== package: apt-get install -y ./$name"
cp "$deb" "$dir/tmp/$name"
in_root sh -c "cd /tmp && apt-get install -y -qq --no-install-recommends ./$(printf %q "$name")" >/dev/null
in_root dpkg-query -W -f='${Status} ${Version}\n' graced | grep -qx "install ok installed $version" ||
    fail "graced $version is not installed"

echo "== package: every file's place, owner and mode"
# path owner:group mode
expected="
/usr/bin/graced root:root 755
/usr/bin/gracectl root:root 755
/lib/systemd/system/graced.service root:root 644
/usr/lib/sysusers.d/graced.conf root:root 644
/etc/default/graced root:root 644
/usr/share/man/man1/graced.1.gz root:root 644
/usr/share/man/man1/gracectl.1.gz root:root 644
/usr/share/bash-completion/completions/graced root:root 644
/usr/share/bash-completion/completions/gracectl root:root 644
/usr/share/zsh/vendor-completions/_graced root:root 644
/usr/share/zsh/vendor-completions/_gracectl root:root 644
/usr/share/fish/vendor_completions.d/graced.fish root:root 644
/usr/share/fish/vendor_completions.d/gracectl.fish root:root 644
/usr/share/doc/graced/README.md root:root 644
/usr/share/doc/graced/copyright root:root 644
/usr/share/doc/graced/changelog.gz root:root 644
"
while read -r path owner mode; do
    [ -n "$path" ] || continue
    actual=$(in_root stat -c '%U:%G %a %F' "$path" 2>/dev/null) || fail "$path is missing"
    [ "$actual" = "$owner $mode regular file" ] || [ "$actual" = "$owner $mode regular empty file" ] ||
        fail "$path is $actual, not $owner $mode regular file"
    [ -s "$dir$path" ] || fail "$path is empty"
done <<<"$expected"
# No file beyond the list, and every folder the package lists root's and 0755.
files=$(in_root dpkg -L graced | while read -r path; do [ -d "$dir$path" ] || echo "$path"; done | sort)
[ "$files" = "$(awk 'NF { print $1 }' <<<"$expected" | sort)" ] ||
    fail "the package's files differ from the list: $(diff <(awk 'NF { print $1 }' <<<"$expected" | sort) - <<<"$files" || true)"
in_root dpkg -L graced | while read -r path; do
    # dpkg lists the root as /. but leaves its mode alone.
    [ "$path" != /. ] && [ -d "$dir$path" ] && [ ! -L "$dir$path" ] || continue
    actual=$(in_root stat -c '%U:%G %a' "$path")
    [ "$actual" = "root:root 755" ] || fail "folder $path is $actual, not root:root 755"
done
grep -q '^ExecStart=/usr/bin/graced serve ' "$dir/lib/systemd/system/graced.service" ||
    fail "the installed unit does not run /usr/bin/graced"
in_root getent group graced >/dev/null || fail "postinst made no graced group"
[ ! -e "$dir/var/lib/graced" ] || fail "installing created /var/lib/graced (systemd's StateDirectory= does)"
echo "$(awk 'NF' <<<"$expected" | wc -l) files in place, owned root:root with their modes; group graced exists"

echo "== package: graced --version, graced capture --help, gracectl --version from the root"
in_root graced --version | tee "$work/version"
grep -Eq "^graced $version \([0-9a-f]+(-dirty)?\)$" "$work/version" || fail "graced --version says $(cat "$work/version")"
in_root graced capture --help >"$work/capture-help"
grep -q '^USAGE: graced capture' "$work/capture-help" || fail "graced capture --help printed no usage"
head -n 1 "$work/capture-help"
in_root gracectl --version | grep -Eq "^gracectl $version " || fail "gracectl --version disagrees"
for command in graced gracectl; do
    zcat "$dir/usr/share/man/man1/$command.1.gz" | grep -Eqi "^\.TH $command \"?1\"? " ||
        fail "$command.1.gz is no man page of section 1"
done

echo "== package: systemd-analyze --root=$dir verify /lib/systemd/system/graced.service"
# verify wants the units the service depends on by default (sysinit.target, ...); minbase has no
# systemd, so the host's units are copied in for the check and deleted after it.
units=$dir/usr/lib/systemd/system
mkdir -p "$units"
(cd "$units" && find . | sort) >"$work/units"
cp -an "$(readlink -f /lib/systemd/system)/." "$units/"
status=0
verify=$(SYSTEMD_COLORS=0 systemd-analyze --root="$dir" verify "$dir/lib/systemd/system/graced.service" 2>&1) ||
    status=$?
# What the copy added, children before their folders.
(cd "$units" && find . | sort) | comm -13 "$work/units" - | sort -r | while read -r unit; do
    if [ -d "$units/$unit" ] && [ ! -L "$units/$unit" ]; then rmdir "$units/$unit"; else rm -f "$units/$unit"; fi
done
[ -z "$verify" ] || printf '%s\n' "$verify"
if [ "$status" -ne 0 ] || printf '%s\n' "$verify" | grep -qF graced.service; then
    fail "systemd-analyze verify found problems in the installed unit (exit status $status)"
fi
echo "verify ok"

echo "== package: apt-get remove (a database in /var/lib/graced first: it must stay)"
mkdir -p "$dir/var/lib/graced"
echo "not a database, only here to be kept" >"$dir/var/lib/graced/graced.sqlite"
in_root apt-get remove -y -qq graced >/dev/null
left=$(changed_since "$work/before" "$shadow_backups|^\./var/lib/graced(/graced\.sqlite)?$|^\./etc/default/graced$")
[ -z "$left" ] || fail "apt-get remove left (or removed) these: $left"
[ -f "$dir/var/lib/graced/graced.sqlite" ] || fail "apt-get remove deleted the database"
[ -f "$dir/etc/default/graced" ] || fail "apt-get remove deleted the conffile (dpkg keeps it until a purge)"
echo "only the database and the conffile /etc/default/graced remain"

echo "== package: apt-get purge"
in_root apt-get purge -y -qq graced >/dev/null
left=$(changed_since "$work/before" "$shadow_backups")
[ -z "$left" ] || fail "apt-get purge left (or removed) these: $left"
[ ! -e "$dir/var/lib/graced" ] || fail "apt-get purge kept /var/lib/graced"
echo "nothing remains (the graced group stays, as Debian keeps system groups)"

echo "package: $(basename "$deb") ok in $(($(date +%s) - started)) s"

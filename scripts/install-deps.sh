#!/usr/bin/env bash
# Installs the Debian packages GraceAPI builds and runs with. Idempotent: does nothing when they are
# already there. Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
    pkg-config
    libmicrohttpd-dev   # HTTP
    libpci-dev pci.ids  # PCI enumeration and device names
    libsqlite3-dev      # storage
    pciutils            # lspci, for operators and for checking generated trees
    curl jq             # the README's examples and the end-to-end scripts
    openssl             # TLS certificates: for operators, and made at test time by the tests
    util-linux          # setpriv: the tests act as an unprivileged member of the socket's group
    prometheus          # promtool: checks /metrics, the alert rules and their tests (check-deploy.sh)
    dpkg-dev binutils   # the Debian package (package-deb.sh): dpkg-shlibdeps, strip
    help2man lintian    # its man pages from --help, and the check of the result
    debootstrap         # the clean Debian 12 root check-package.sh installs the package into
)
# The contract checks' Python tools (schemathesis, jsonschema) come from PyPI into .build-venv:
# scripts/python-venv.sh makes it, installing python3-venv when `python3 -m venv` cannot.

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "Installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

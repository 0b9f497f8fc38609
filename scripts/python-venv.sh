#!/usr/bin/env bash
# Makes .build-venv, a Python virtual environment with scripts/contract-requirements.txt installed
# (schemathesis, jsonschema), and prints its path. Idempotent: it reinstalls only when the
# requirements changed. Installs Debian's python3-venv when `python3 -m venv` cannot make one.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.build-venv
requirements=scripts/contract-requirements.txt
if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$venv/installed-requirements.txt"; then
    echo "$PWD/$venv"
    exit 0
fi

rm -rf "$venv"
if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian splits ensurepip out of python3; without it `python3 -m venv` fails.
    rm -rf "$venv"
    echo "Installing python3-venv" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >&2
    $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" >&2
cp "$requirements" "$venv/installed-requirements.txt"
echo "$PWD/$venv"

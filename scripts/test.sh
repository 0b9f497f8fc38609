#!/usr/bin/env bash
# The whole test suite: install what is needed, check the style, build without warnings, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

echo "== style: swift format lint --strict"
swift format lint --strict --recursive Package.swift Plugins Sources Tests bench fuzz/Package.swift fuzz/Sources

echo "== style: no closure kept bare as a lock's value (each inout access wraps it once more; see Support/Observer.swift)"
if grep -rnE '(Mutex|GuardedValue)<\(?(@Sendable )?\([^()]*\) (async )?(throws )?->' Sources Tests | grep -v '///'; then
    echo "Keep the closure in a struct (Observer) or an object instead."
    exit 1
fi

echo "== build (warnings in our own code fail the build)"
swift build --build-tests 2>&1 | tee .build-log.txt
if grep -E '^/.*(Sources|Tests)/.*: warning:' .build-log.txt; then
    echo "Warnings in our own code: fix them."
    exit 1
fi

echo "== tests"
# The Metrics tests save a real /metrics scrape here, for promtool check metrics in check-deploy.sh.
export GRACEAPI_METRICS_SCRAPE="$PWD/.build-metrics-scrape.txt"
rm -f "$GRACEAPI_METRICS_SCRAPE"
swift test --skip-build 2>&1 | tee .test-log.txt

echo "== tests again, while both cores are kept busy (a test that passes only on a quiet machine is broken)"
scripts/test-repeat.sh 1 --hog --skip-build

echo "== deploy/: Prometheus rules and their tests, the dashboard's expressions, Kubernetes manifests, the scrape"
./scripts/check-deploy.sh

echo "== fuzz: each libFuzzer target 45 s over its seed corpus (address sanitizer; fails on a crash)"
./scripts/fuzz.sh 45

echo "== contract: the tests' saved answers against openapi.yaml (jsonschema)"
"$(./scripts/python-venv.sh)/bin/python" scripts/check-contract.py

echo "== contract: schemathesis against graced --simulate"
./scripts/schemathesis.sh

echo "== the systemd unit: systemd-analyze verify and security (exposure at most 3.5)"
./scripts/check-unit.sh

echo "== package: the Debian package (package-deb.sh, lintian) installed into a clean Debian 12 root, removed, purged"
./scripts/check-package.sh

echo "== real-kernel lab: lab/run all (a QEMU guest with an IOMMU, vfio-pci and a CXL device)"
lab/run all

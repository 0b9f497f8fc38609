#!/usr/bin/env bash
# Checks deploy/: the Prometheus rules (promtool check rules, promtool test rules), the scrape
# configuration, that every PromQL expression of the Grafana dashboard is evaluated by a rules test
# (so a typo in the dashboard fails here), the Kubernetes manifests (kubernetes-validate, strict,
# against a current Kubernetes), and, when a test saved one, a real /metrics scrape
# (promtool check metrics).
set -euo pipefail
cd "$(dirname "$0")/.."

kubernetes_version=1.37.0
python="$(./scripts/python-venv.sh)/bin/python"

echo "-- promtool check rules"
promtool check rules deploy/prometheus/graceapi-rules.yml

echo "-- promtool test rules"
(cd deploy/prometheus && promtool test rules tests/*.yml)

echo "-- promtool check config (syntax: the secrets it names exist only in a cluster)"
promtool check config --syntax-only deploy/prometheus/scrape-config.yml

echo "-- every dashboard expression is evaluated by a rules test"
"$python" - <<'PY'
import glob, json, sys
import yaml

dashboard = json.load(open("deploy/grafana/graceapi.json"))
expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
tested = set()
for path in glob.glob("deploy/prometheus/tests/*.yml"):
    for test in yaml.safe_load(open(path)).get("tests", []):
        for case in test.get("promql_expr_test", []):
            if case.get("exp_samples"):
                tested.add(case["expr"].strip())
missing = [e for e in expressions if e.strip() not in tested]
if not expressions:
    sys.exit("the dashboard has no expressions")
for e in missing:
    print(f"not evaluated by any promql_expr_test with samples: {e}")
sys.exit(1 if missing else 0)
PY

echo "-- kubernetes-validate --strict (Kubernetes $kubernetes_version)"
"$(dirname "$python")/kubernetes-validate" --strict --quiet -k "$kubernetes_version" deploy/kubernetes/*.yaml

scrape="${GRACEAPI_METRICS_SCRAPE:-}"
if [ -n "$scrape" ]; then
    echo "-- promtool check metrics on a real scrape ($scrape)"
    test -s "$scrape" || { echo "no scrape at $scrape: did the Metrics tests run?"; exit 1; }
    promtool check metrics < "$scrape"
fi
echo "deploy/ checked"

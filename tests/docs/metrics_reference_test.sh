#!/usr/bin/env bash
# docs_metrics_reference_test: docs/metrics.md documents exactly what a
# running kubefold exports, and docs/alerts.yaml uses only metrics it exports.
#
# Starts kube-emulator (a host and two members, east and west) and kubefold
# against it, as scripts/demo.sh does, and drives one failover to completion
# so that every metric family has a sample (some appear only once something
# has happened: kubefold_failovers_total with the first failover to end).
# Then it scrapes /metrics and checks:
#   * every family of the exposition (`# TYPE` lines) is a row of a table
#     headed `metric` in docs/metrics.md;
#   * every metric such a table lists is in the exposition;
#   * every metric name in the expressions of docs/alerts.yaml is a family
#     of the exposition (or its _bucket/_sum/_count series).
#
# usage: tests/docs/metrics_reference_test.sh ROOT KUBEFOLD KUBE_EMULATOR
set -euo pipefail
ROOT=${1:?usage: metrics_reference_test.sh ROOT KUBEFOLD KUBE_EMULATOR}
KUBEFOLD=${2:?usage: metrics_reference_test.sh ROOT KUBEFOLD KUBE_EMULATOR}
EMULATOR=${3:?usage: metrics_reference_test.sh ROOT KUBEFOLD KUBE_EMULATOR}
for tool in kubectl curl python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "docs_metrics_reference_test: $tool is not installed" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kubefold-docs-metrics-XXXXXX")
EMU_PID= OP_PID=
cleanup() {
  [[ -n "$OP_PID" ]] && kill "$OP_PID" 2>/dev/null && wait "$OP_PID" 2>/dev/null || true
  [[ -n "$EMU_PID" ]] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "docs_metrics_reference_test: $*" >&2
  if [[ -f "$WORK/kubefold.log" ]]; then
    echo "--- kubefold log (last 30 lines) ---" >&2
    tail -30 "$WORK/kubefold.log" >&2
  fi
  exit 1
}
# wait_for SECONDS WHAT COMMAND...: polls every 0.2 s until COMMAND succeeds.
wait_for() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${limit}s waiting for $what"
    sleep 0.2
  done
}
k() { kubectl --kubeconfig "$WORK/host.kubeconfig" "$@"; }
member() { local c=$1; shift; kubectl --kubeconfig "$WORK/$c.kubeconfig" "$@"; }

"$EMULATOR" --clusters host,east,west --dir "$WORK" --control-port 0 >"$WORK/emulator.log" 2>&1 &
EMU_PID=$!
wait_for 30 "kube-emulator" test -s "$WORK/emulator.json"
CONTROL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control"])' "$WORK/emulator.json")

k apply --validate=false -f "$ROOT/crds/" >/dev/null
wait_for 30 "the CRDs" k wait --for condition=established --timeout=1s crd/memberclusters.kubefold.io \
  crd/failoverpolicies.kubefold.io crd/failoveraudits.kubefold.io
printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n---\n' kubefold-system shop | k apply --validate=false -f - >/dev/null
for c in east west; do
  cat <<EOF | k apply --validate=false -f - >/dev/null
apiVersion: v1
kind: Secret
metadata: {name: $c-kubeconfig, namespace: kubefold-system}
data:
  kubeconfig: $(base64 -w0 "$WORK/$c.kubeconfig")
---
apiVersion: kubefold.io/v1alpha1
kind: MemberCluster
metadata: {name: $c}
spec:
  kubeconfigSecretRef: {namespace: kubefold-system, name: $c-kubeconfig}
  health: {periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 1, gracePeriodSeconds: 1}
EOF
  printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n' | member "$c" apply --validate=false -f - >/dev/null
done
cat <<EOF | member east apply --validate=false -f - >/dev/null
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {tier: web}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.27"}]}
EOF
# No Deployment controller runs in the emulator: report the rollout done.
available() {
  member "$1" -n shop patch deployment web --subresource=status --type=merge \
    -p '{"status":{"observedGeneration":1,"replicas":1,"readyReplicas":1,"availableReplicas":1}}' >/dev/null
}
available east

"$KUBEFOLD" --kubeconfig "$WORK/host.kubeconfig" --leader-elect=false --resync 1s --status-period 1s \
  --history-file "$WORK/history.db" --api-bind-address 127.0.0.1:0 --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 127.0.0.1:0 \
  >"$WORK/kubefold.log" 2>&1 &
OP_PID=$!
wait_for 30 "kubefold's endpoints" grep -q "serving the query API on" "$WORK/kubefold.log"
API=$(sed -n 's/.*serving the query API on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$WORK/kubefold.log" | head -n 1)
METRICS=$(sed -n 's/.*serving metrics on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$WORK/kubefold.log" | head -n 1)
[[ -n "$API" && -n "$METRICS" ]] || fail "no API or metrics address in kubefold's log"

all_ready() {
  curl -fsS "http://$API/api/v1/clusters" | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
sys.exit(0 if len(items) == 2 and all(c.get("ready") == "True" and c.get("synced") for c in items) else 1)'
}
wait_for 60 "east and west to be Ready and synced" all_ready

cat <<EOF | k apply --validate=false -f - >/dev/null
apiVersion: kubefold.io/v1alpha1
kind: FailoverPolicy
metadata: {name: web, namespace: shop}
spec:
  selector: {kinds: [Deployment], labelSelector: tier=web}
  clusters: [east, west]
  trigger: {clusterUnhealthySeconds: 1}
EOF
active_on_east() {
  [[ $(k -n shop get failoverpolicy web -o jsonpath='{.status.workloads[0].activeCluster}') == east ]]
}
wait_for 30 "the policy to be evaluated" active_on_east
curl -fsS -X POST "$CONTROL/clusters/east/faults/partition" >/dev/null
wait_for 60 "the failover to west" member west -n shop get deployment web
available west
completed() { [[ $(k -n shop get failoveraudits -o jsonpath='{.items[0].status.phase}') == Completed ]]; }
wait_for 60 "the audit to complete" completed
failover_counted() { curl -fsS "http://$METRICS/metrics" | grep -q '^kubefold_failovers_total{'; }
wait_for 30 "kubefold_failovers_total" failover_counted

curl -fsS "http://$METRICS/metrics" >"$WORK/metrics.txt" || fail "scraping /metrics failed"

python3 - "$WORK/metrics.txt" "$ROOT/docs/metrics.md" "$ROOT/docs/alerts.yaml" <<'PY'
import re, sys
import yaml

exposition, doc_path, alerts_path = sys.argv[1:4]
families = {}
for line in open(exposition, encoding="utf-8"):
    m = re.match(r"# TYPE (\S+) (\S+)", line)
    if m:
        families[m.group(1)] = m.group(2)
if not families:
    sys.exit("docs_metrics_reference_test: the exposition has no # TYPE line")

# Rows of the tables whose first header cell is "metric": `name` | type | ...
documented = {}
header = None
for number, line in enumerate(open(doc_path, encoding="utf-8"), 1):
    if not line.startswith("|"):
        header = None
        continue
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if header is None:
        header = cells
        continue
    if header[0] != "metric" or set(line.strip()) <= set("|-: "):
        continue
    m = re.match(r"`([a-zA-Z_:][a-zA-Z0-9_:]*)`", cells[0])
    if not m:
        sys.exit("docs_metrics_reference_test: docs/metrics.md line %d: the metric cell %r is not a `name`" % (number, cells[0]))
    documented[m.group(1)] = (number, cells[1] if len(cells) > 1 else "")

problems = []
for name, kind in sorted(families.items()):
    if name not in documented:
        problems.append("%s (%s) is exported but not documented in docs/metrics.md" % (name, kind))
    elif documented[name][1] != kind:
        problems.append("%s is a %s, but docs/metrics.md line %d says %r" % (name, kind, documented[name][0], documented[name][1]))
for name, (number, _) in sorted(documented.items()):
    if name not in families:
        problems.append("docs/metrics.md line %d documents %s, which a running kubefold does not export" % (number, name))

series = set()
for name, kind in families.items():
    series.add(name)
    if kind == "histogram":
        series.update({name + "_bucket", name + "_sum", name + "_count"})
prefixes = ("kubefold_", "controller_runtime_", "workqueue_", "rest_client_", "leader_election_", "process_")
for group in yaml.safe_load(open(alerts_path, encoding="utf-8"))["groups"]:
    for rule in group["rules"]:
        expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', rule["expr"])  # label values are not names
        for token in set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)):
            if token.startswith(prefixes) and token not in series:
                problems.append("docs/alerts.yaml %s uses %s, which a running kubefold does not export"
                                % (rule.get("alert", rule.get("record")), token))

if problems:
    print("docs_metrics_reference_test: %d problem(s):" % len(problems), file=sys.stderr)
    for p in problems:
        print("  " + p, file=sys.stderr)
    sys.exit(1)
print("docs_metrics_reference_test: %d families exported, all documented; the alerts use only exported metrics"
      % len(families))
PY

#!/usr/bin/env bash
# The kubefold demo: a failover and its audit, end to end, in about a minute.
#
# Without arguments it runs against emulated clusters: kube-emulator serves a
# host and three member clusters (east, west, north) on loopback; kubectl
# applies kubefold's CRDs, the members' kubeconfig Secrets, the
# MemberClusters and a FailoverPolicy; kubefold runs against the host; then
# east is cut off and the workload moves to west, recorded in a
# FailoverAudit.
#
# With HOST_KUBECONFIG=<file> it runs kubefold against that (real) host
# cluster instead, in the foreground, until Ctrl-C; register members by
# applying MemberClusters and their Secrets there (crds/examples/).
#
# usage: scripts/demo.sh            (make demo)
#        HOST_KUBECONFIG=~/.kube/config scripts/demo.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
KUBEFOLD=$BUILD/operator/kubefold
EMULATOR=$BUILD/tests/emulator/kube-emulator

if [[ -n "${HOST_KUBECONFIG:-}" ]]; then
  kubectl --kubeconfig "$HOST_KUBECONFIG" apply -f "$ROOT/crds/"
  exec "$KUBEFOLD" --kubeconfig "$HOST_KUBECONFIG"
fi

WORK=$(mktemp -d /tmp/kubefold-demo-XXXXXX)
EMU_PID= OP_PID=
cleanup() {
  [[ -n "$OP_PID" ]] && kill "$OP_PID" 2>/dev/null && wait "$OP_PID" 2>/dev/null || true
  [[ -n "$EMU_PID" ]] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
k() { kubectl --kubeconfig "$WORK/host.kubeconfig" "$@"; }
member() { local c=$1; shift; kubectl --kubeconfig "$WORK/$c.kubeconfig" "$@"; }
wait_for() {  # wait_for <seconds> <description> <command...>
  local limit=$1 what=$2; shift 2
  for ((i = 0; i < limit * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "demo: timed out waiting for $what" >&2
  echo "--- kubefold log (last 40 lines) ---" >&2
  tail -40 "$WORK/kubefold.log" >&2 || true
  exit 1
}

say "Starting kube-emulator: host, east, west, north (HTTPS, tokens)"
"$EMULATOR" --clusters host,east,west,north --dir "$WORK" --control-port 0 >"$WORK/emulator.log" 2>&1 &
EMU_PID=$!
wait_for 20 "the emulator" test -s "$WORK/emulator.json"
CONTROL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control"])' "$WORK/emulator.json")

say "kubectl apply -f crds/ on the host"
k apply --validate=false -f "$ROOT/crds/"
k wait --for condition=established --timeout=20s crd/memberclusters.kubefold.io crd/failoverpolicies.kubefold.io \
  crd/failoveraudits.kubefold.io >/dev/null

say "Registering the members: a kubeconfig Secret and a MemberCluster each"
printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kubefold-system\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n' |
  k apply --validate=false -f -
for c in east west north; do
  cat <<EOF | k apply --validate=false -f -
apiVersion: v1
kind: Secret
metadata:
  name: $c-kubeconfig
  namespace: kubefold-system
data:
  kubeconfig: $(base64 -w0 "$WORK/$c.kubeconfig")
---
apiVersion: kubefold.io/v1alpha1
kind: MemberCluster
metadata:
  name: $c
spec:
  kubeconfigSecretRef:
    namespace: kubefold-system
    name: $c-kubeconfig
  health:
    periodSeconds: 1
    failureThreshold: 2
    gracePeriodSeconds: 2
EOF
  printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n' | member "$c" apply --validate=false -f - >/dev/null
done

say "Deploying web (tier=web) on east, and reporting it available"
cat <<EOF | member east apply --validate=false -f -
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {tier: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.27"}]
EOF
# No controller-manager runs in the emulator: the demo plays the Deployment
# controller's part and reports the rollout done.
available() {  # available <cluster>
  member "$1" -n shop patch deployment web --subresource=status --type=merge \
    -p '{"status":{"observedGeneration":1,"replicas":2,"readyReplicas":2,"availableReplicas":2}}' >/dev/null
}
available east

say "Starting kubefold against the host"
# Its endpoints on ephemeral loopback ports (no authentication on loopback);
# the query API's port is read from its log.
"$KUBEFOLD" --kubeconfig "$WORK/host.kubeconfig" --leader-elect=false --resync 1s --status-period 1s \
  --api-bind-address 127.0.0.1:0 --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 127.0.0.1:0 \
  >"$WORK/kubefold.log" 2>&1 &
OP_PID=$!
wait_for 20 "the query API" grep -q "serving the query API on" "$WORK/kubefold.log"
API=$(sed -n 's/.*serving the query API on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$WORK/kubefold.log" | head -n 1)
METRICS=$(sed -n 's/.*serving metrics on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$WORK/kubefold.log" | head -n 1)
# kubectl finds the plugin (kubectl-kubefold) on PATH. In a cluster it goes
# through the API server's service proxy; here, straight to the local port.
export PATH="$BUILD/operator:$PATH"
kf() { KUBECONFIG="$WORK/host.kubeconfig" kubectl kubefold "$@" --server-url "http://$API"; }
ready() { [[ $(k get mc -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}') == "True True True " ]]; }
wait_for 60 "every member to be Ready" ready
k get memberclusters -o wide

say "A FailoverPolicy: tier=web in shop runs on east, then west, then north"
cat <<EOF | k apply --validate=false -f -
apiVersion: kubefold.io/v1alpha1
kind: FailoverPolicy
metadata:
  name: web
  namespace: shop
spec:
  selector: {kinds: [Deployment], labelSelector: tier=web}
  clusters: [east, west, north]
  trigger: {clusterUnhealthySeconds: 3}
  failback: {mode: Manual}
EOF
wait_for 30 "the policy to be evaluated" bash -c "kubectl --kubeconfig $WORK/host.kubeconfig -n shop get fp web -o jsonpath='{.status.workloads[0].activeCluster}' | grep -q east"
k -n shop get failoverpolicy web

say "kubectl kubefold clusters / whatif east: what would move if east failed now"
kf clusters
kf whatif east

say "Cutting east off the network (the emulator's partition fault)"
curl -fsS -X POST "$CONTROL/clusters/east/faults/partition" >/dev/null
wait_for 60 "the failover to west" bash -c "kubectl --kubeconfig $WORK/$(echo west).kubeconfig -n shop get deployment web"
member west -n shop get deployment web --show-labels
k get memberclusters

say "west's copy becomes available: the audit completes with its 'after' snapshot"
available west
completed() { [[ $(k -n shop get fa -o jsonpath='{.items[0].status.phase}') == Completed ]]; }
wait_for 30 "the audit to complete" completed
k -n shop get failoveraudits -o wide
k -n shop get failoveraudits -o yaml | sed -n '/^  spec:/,/^  status:/p'
k -n shop get events --field-selector involvedObject.kind=FailoverPolicy 2>/dev/null || k -n shop get events

AUDIT=$(k -n shop get fa -o jsonpath='{.items[0].metadata.name}')
say "kubectl kubefold audit $AUDIT --diff: what changed between its pinned snapshots"
kf -n shop audit "$AUDIT" --diff
say "kubectl kubefold snapshots (the audit's two are pinned)"
kf snapshots | awk 'NR == 1 || /shop\//'
say "kubefold's metrics (excerpt)"
curl -fsS "http://$METRICS/metrics" | grep -E "^(kubefold_failovers_total|kubefold_cluster_ready|kubefold_audits)" || true

say "kubefold's log"
grep -E "leading|watching|ClusterUnhealthy|removed" "$WORK/kubefold.log" | cut -c1-200 || true

say "Done: east failed, web moved to west, and FailoverAudit $(k -n shop get fa -o jsonpath='{.items[0].metadata.name}') pins the snapshots before and after."

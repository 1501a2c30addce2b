#!/usr/bin/env bash
# The kubefold demo: a failover and its audit, end to end, in well under two
# minutes.
#
# Without HOST_KUBECONFIG it runs against emulated clusters: kube-emulator
# serves a host and three member clusters (east, west, north) on loopback.
# kubectl applies kubefold's CRDs and what the Helm chart installs (rendered
# by chart-render: ServiceAccount, RBAC, Service, Deployment). kube-emulator
# runs no pods, so the demo runs the Deployment's container itself: kubefold
# with the Deployment's flags and the chart ServiceAccount's identity, so it
# has exactly the chart's permissions. Then the members' kubeconfig Secrets,
# MemberClusters and a FailoverPolicy; east is cut off the network and the
# workload moves to west, recorded in a FailoverAudit that `kubectl kubefold`
# shows with its before/after diff; east is healed; everything stops.
#
# With HOST_KUBECONFIG=<file> it runs kubefold against that (real) host
# cluster instead, in the foreground, until Ctrl-C; register members by
# applying MemberClusters and their Secrets there (crds/examples/).
#
# usage: scripts/demo.sh [--keep]     (make demo, make demo DEMO_ARGS=--keep)
#   --keep   after the failover, keep everything running for exploration and
#            print the kubeconfigs and commands to use; Ctrl-C stops it.
#        HOST_KUBECONFIG=~/.kube/config scripts/demo.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
KUBEFOLD=$BUILD/operator/kubefold
EMULATOR=$BUILD/tests/emulator/kube-emulator
RENDER=$BUILD/tests/chart/chart-render

KEEP=0
for arg in "$@"; do
  case $arg in
    --keep) KEEP=1 ;;
    -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument '$arg' (--keep, --help)" >&2; exit 2 ;;
  esac
done

if [[ -n "${HOST_KUBECONFIG:-}" ]]; then
  kubectl --kubeconfig "$HOST_KUBECONFIG" apply -f "$ROOT/crds/"
  exec "$KUBEFOLD" --kubeconfig "$HOST_KUBECONFIG"
fi

for bin in "$KUBEFOLD" "$EMULATOR" "$RENDER" "$BUILD/operator/kubectl-kubefold"; do
  [[ -x $bin ]] || { echo "demo: $bin is missing: build first (make demo does)" >&2; exit 1; }
done

START=$(date +%s)
WORK=$(mktemp -d /tmp/kubefold-demo-XXXXXX)
EMU_PID= OP_PID=
cleanup() {
  [[ -n "$OP_PID" ]] && kill "$OP_PID" 2>/dev/null && wait "$OP_PID" 2>/dev/null || true
  [[ -n "$EMU_PID" ]] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null || true
  # DEMO_LOG_DIR=<dir> keeps kubefold's and the emulator's logs and the
  # clusters' tokens (the demo test reads them).
  if [[ -n "${DEMO_LOG_DIR:-}" ]]; then
    cp "$WORK"/*.log "$WORK/chart.yaml" "$DEMO_LOG_DIR"/ 2>/dev/null
    cat "$WORK"/*.kubeconfig 2>/dev/null | sed -n 's/^ *token: //p' >"$DEMO_LOG_DIR/tokens"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -t 1 ]]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD= PLAIN=; fi
say() { printf '\n%s== %s%s  (%ss)\n' "$BOLD" "$*" "$PLAIN" "$(($(date +%s) - START))"; }
k() { kubectl --kubeconfig "$WORK/host.kubeconfig" "$@"; }
member() { local c=$1; shift; kubectl --kubeconfig "$WORK/$c.kubeconfig" "$@"; }
wait_for() {  # wait_for <seconds> <description> <command...>: progress on one line
  local limit=$1 what=$2; shift 2
  local begin=$SECONDS
  while ((SECONDS - begin < limit)); do
    if "$@" >/dev/null 2>&1; then
      printf '   waiting for %s ... done in %ss\n' "$what" "$((SECONDS - begin))"
      return 0
    fi
    if [[ -t 1 ]]; then printf '\r   waiting for %s ... %ss' "$what" "$((SECONDS - begin))"; fi
    sleep 0.2
  done
  [[ -t 1 ]] && printf '\n'
  echo "demo: timed out after ${limit}s waiting for $what" >&2
  echo "--- kubefold log (last 40 lines) ---" >&2
  tail -40 "$WORK/kubefold.log" >&2 || true
  exit 1
}

say "Starting kube-emulator: host, east, west, north (HTTPS, tokens)"
# --authorization-log: the host records each request of a user other than
# the admin (kubefold's ServiceAccount here) and whether RBAC allowed it.
"$EMULATOR" --clusters host,east,west,north --dir "$WORK" --control-port 0 --authorization-log \
  >"$WORK/emulator.log" 2>&1 &
EMU_PID=$!
wait_for 20 "the emulator" test -s "$WORK/emulator.json"
CONTROL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control"])' "$WORK/emulator.json")

say "kubectl apply -f crds/ on the host"
k apply --validate=false -f "$ROOT/crds/"
k wait --for condition=established --timeout=20s crd/memberclusters.kubefold.io crd/failoverpolicies.kubefold.io \
  crd/failoveraudits.kubefold.io >/dev/null

say "Installing the Helm chart's objects (rendered by chart-render; no helm here)"
printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kubefold-system\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n' |
  k apply --validate=false -f -
"$RENDER" --chart "$ROOT/charts/kubefold" --release kubefold --namespace kubefold-system --skip-tests \
  >"$WORK/chart.yaml"
k apply --validate=false -f "$WORK/chart.yaml"

say "Registering the members: a kubeconfig Secret and a MemberCluster each"
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

say "Starting kubefold as the chart's Deployment would: its flags, its ServiceAccount"
# The ServiceAccount's token (what the kubelet would mount), from the
# emulator's user registry: a kubeconfig for system:serviceaccount:kubefold-system:kubefold.
SA_KUBECONFIG=$(curl -fsS -X POST \
  "$CONTROL/clusters/host/users/system:serviceaccount:kubefold-system:kubefold?group=system:serviceaccounts,system:serviceaccounts:kubefold-system" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["kubeconfig"])')
# The container's args from the rendered Deployment, then the demo's own:
# endpoints on ephemeral loopback ports (no authentication on loopback) and
# faster periods (the last of a repeated flag wins).
mapfile -t CHART_ARGS < <(python3 -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "Deployment":
        print("\n".join(d["spec"]["template"]["spec"]["containers"][0]["args"]))' "$WORK/chart.yaml")
printf '   %s\n' "${CHART_ARGS[@]}"
POD_NAME=kubefold-6d5f7c9b8-demo POD_NAMESPACE=kubefold-system \
  "$KUBEFOLD" "${CHART_ARGS[@]}" --kubeconfig "$SA_KUBECONFIG" --log-format=text --resync=1s --status-period=1s \
  --history-file="$WORK/history.db" --api-bind-address=127.0.0.1:0 --metrics-bind-address=127.0.0.1:0 --health-probe-bind-address=127.0.0.1:0 \
  >"$WORK/kubefold.log" 2>&1 &
OP_PID=$!
wait_for 20 "the query API" grep -q "serving the query API on" "$WORK/kubefold.log"
API=$(sed -n 's/.*serving the query API on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$WORK/kubefold.log" | head -n 1)
METRICS=$(sed -n 's/.*serving metrics on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$WORK/kubefold.log" | head -n 1)
wait_for 30 "the leader-election Lease" bash -c \
  "kubectl --kubeconfig $WORK/host.kubeconfig -n kubefold-system get lease kubefold -o jsonpath='{.spec.holderIdentity}' | grep -q demo"
# kubectl finds the plugin (kubectl-kubefold) on PATH. In a cluster it goes
# through the API server's service proxy; here, straight to the local port.
export PATH="$BUILD/operator:$PATH"
kf() { KUBECONFIG="$WORK/host.kubeconfig" kubectl kubefold "$@" --server-url "http://$API"; }
ready() {  # ready <True|False|Unknown>...: each member's Ready condition, in order
  [[ $(k get mc east west north -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}') == "$* " ]]
}
wait_for 60 "every member to be Ready" ready True True True
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
wait_for 60 "east to go unhealthy and web to fail over to west" \
  member west -n shop get deployment web
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

say "Healing east: it comes back Ready; web stays on west (failback: Manual)"
curl -fsS -X POST "$CONTROL/clusters/east/faults/heal" >/dev/null
wait_for 60 "east to be Ready again" ready True True True
k get memberclusters
echo "   (annotate the policy to move web home: kubectl -n shop annotate fp web kubefold.io/failback=now)"

say "kubefold's log (excerpt)"
grep -E "leading|watching|ClusterUnhealthy|failover|removed" "$WORK/kubefold.log" | cut -c1-200 | tail -20 || true

if ((KEEP)); then
  say "Still running, for exploration (Ctrl-C stops everything)"
  cat <<EOF
   Host cluster:        export KUBECONFIG=$WORK/host.kubeconfig
   Member clusters:     $WORK/{east,west,north}.kubeconfig
   kubefold's identity: $SA_KUBECONFIG
   Query API:           http://$API    (e.g. curl http://$API/api/v1/clusters)
   Metrics:             http://$METRICS/metrics
   kubectl kubefold:    PATH=$BUILD/operator:\$PATH KUBECONFIG=$WORK/host.kubeconfig kubectl kubefold --server-url http://$API clusters
   Faults:              curl -X POST $CONTROL/clusters/west/faults/partition   (heal, clear; see tests/emulator/README.md)
   kubefold's log:      $WORK/kubefold.log
EOF
  wait "$OP_PID" || true
  OP_PID=
  exit 0
fi

say "Shutting down: SIGTERM to kubefold, then the emulator"
stop_begin=$SECONDS
kill -TERM "$OP_PID"
rc=0
wait "$OP_PID" || rc=$?
OP_PID=
echo "   kubefold exited with status $rc after $((SECONDS - stop_begin))s"
kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null || true
EMU_PID=
((rc == 0)) || { echo "demo: kubefold did not stop cleanly (status $rc)" >&2; exit 1; }

say "Done: east failed, web moved to west, and FailoverAudit $AUDIT pins the snapshots before and after."

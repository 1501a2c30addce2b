#!/usr/bin/env bash
# Tests charts/kubefold without helm (which cannot be installed here):
#
#  1. the chart's crds/ are byte-identical to the top-level crds/ (one source
#     of truth);
#  2. chart-render (tests/chart/render: Go text/template + sprig + Helm's own
#     functions, values coalesced and validated against values.schema.json with
#     the validator Helm uses) renders the default values and the variants in
#     tests/chart/values/, and check_rendered.py checks each rendering;
#  3. values that are wrong are refused with a message naming what is wrong;
#  4. real kubectl applies the renderings to kube-emulator (default, then the
#     `ha` values as an upgrade of the same release, then a re-apply that must
#     change nothing), and `kubectl auth can-i --as` the chart's ServiceAccount
#     shows its RBAC grants what kubefold uses and refuses the rest;
#  5. the values table in the chart's README is what values.yaml generates.
#
# usage: chart_test.sh CHART_RENDER KUBE_EMULATOR KUBEFOLD SOURCE_DIR
set -euo pipefail

RENDER=$1 EMULATOR=$2 KUBEFOLD=$3 SRC=$4
CHART=$SRC/charts/kubefold
HERE=$SRC/tests/chart
WORK=$(mktemp -d /tmp/kubefold-chart-test-XXXXXX)
EMU_PID=
cleanup() {
  [[ -n "$EMU_PID" ]] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

failures=0
pass() { printf 'ok   %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; failures=$((failures + 1)); }

# --- 1. CRDs: one source of truth -------------------------------------------
top=$(cd "$SRC/crds" && ls ./*.yaml | sort)
chart=$(cd "$CHART/crds" && ls ./*.yaml | sort)
if [[ "$top" != "$chart" ]]; then
  fail "crds: the chart ships [$chart] but crds/ has [$top]"
else
  same=1
  for f in $top; do
    cmp -s "$SRC/crds/$f" "$CHART/crds/$f" || { fail "crds: charts/kubefold/crds/$f differs from crds/$f (copy crds/*.yaml into the chart)"; same=0; }
  done
  ((same)) && pass "crds: charts/kubefold/crds/ is identical to crds/ ($(echo $top | wc -w) files)"
fi

# --- 2. Render and check the variants ---------------------------------------
render() {  # render <variant> <release> [chart-render args...]: writes $WORK/<variant>.yaml and .notes
  local variant=$1 release=$2; shift 2
  "$RENDER" --chart "$CHART" --release "$release" --namespace kubefold-system "$@" \
    --notes "$WORK/$variant.notes" >"$WORK/$variant.yaml"
}
checked() {  # checked <variant> <release> [chart-render args...]: render, then check_rendered.py
  local variant=$1
  if ! render "$@" 2>"$WORK/$variant.err"; then
    fail "render $variant: $(cat "$WORK/$variant.err")"
    return
  fi
  if out=$(python3 "$HERE/check_rendered.py" "$variant" "$WORK/$variant.yaml" "$KUBEFOLD" 2>&1); then
    pass "$out"
  else
    fail "render $variant:"$'\n'"$out"
  fi
}
checked default kubefold
checked ha kubefold -f "$HERE/values/ha.yaml"
checked tls kubefold -f "$HERE/values/tls.yaml"
checked minimal mini -f "$HERE/values/minimal.yaml"
checked persistence keep -f "$HERE/values/persistence.yaml"
# The history's claim with the chart's defaults, a claim the user made, and
# "-" for the storage class.
checked persistence-defaults kubefold --set history.persistence.enabled=true
checked persistence-existing keep -f "$HERE/values/persistence.yaml" \
  --set history.persistence.existingClaim=kubefold-history-data
checked persistence-noclass keep -f "$HERE/values/persistence.yaml" --set 'history.persistence.storageClassName="-"'
# NOTES.txt names what the user needs.
if grep -q "kind: MemberCluster" "$WORK/default.notes" &&
   grep -q -- "--resource-name=http:kubefold:api" "$WORK/default.notes" &&
   grep -q "audit NAME --diff" "$WORK/default.notes" &&
   grep -q -- "--resource-name=https:fold:api" "$WORK/tls.notes" &&
   grep -q "query API is off" "$WORK/minimal.notes" &&
   grep -q "may read Secrets only in: kubefold-system, fleet" "$WORK/ha.notes"; then
  pass "NOTES.txt: registration, the query Role (http/https, service name) and the diff command"
else
  fail "NOTES.txt lacks the registration, query Role or diff instructions"
fi
# Same values, same output.
"$RENDER" --chart "$CHART" -f "$HERE/values/ha.yaml" >"$WORK/ha.again"
cmp -s "$WORK/ha.yaml" "$WORK/ha.again" && pass "rendering is deterministic" || fail "two renderings of ha differ"

# --- 3. Wrong values are refused, naming what is wrong ----------------------
refused() {  # refused <expected message (grep -E)> <chart-render args...>
  local want=$1; shift
  if "$RENDER" --chart "$CHART" "$@" >/dev/null 2>"$WORK/refused.err"; then
    fail "accepted: $*"
  elif grep -qE -- "$want" "$WORK/refused.err"; then
    pass "refused $* ($(grep -E -m1 -- "$want" "$WORK/refused.err" | sed 's/^ *//'))"
  else
    fail "refused $* but without /$want/: $(cat "$WORK/refused.err")"
  fi
}
refused "Additional property replicaCont is not allowed" --set replicaCont=2
refused "image: Additional property tga is not allowed" --set image.tga=v1
refused "logging.format: .*json.*text" --set logging.format=xml
refused "logging.verbosity: Must be less than or equal to 2" --set logging.verbosity=5
refused "image.digest: Does not match pattern" --set image.digest=latest
refused "leaderElection.leaseDuration: Does not match pattern" --set leaderElection.leaseDuration=15sec
refused "replicaCount: Invalid type. Expected: integer, given: string" --set 'replicaCount="3"'
refused "rbac.secretNamespaces.0: Does not match pattern" --set 'rbac.secretNamespaces=[Fleet]'
refused "extraArgs.0: Does not match pattern" --set 'extraArgs=[member-qps=5]'
refused "replicaCount is 2 but leaderElection.enabled is false" --set replicaCount=2 --set leaderElection.enabled=false
refused "api.tls.enabled needs api.tls.secretName" --set api.tls.enabled=true
refused "issuerRef.name is required" --set api.tls.enabled=true --set api.tls.certManager.enabled=true
refused "set minAvailable or maxUnavailable, not both" --set podDisruptionBudget.enabled=true \
  --set podDisruptionBudget.minAvailable=1 --set podDisruptionBudget.maxUnavailable=1
refused "port 8081 is used twice" --set api.port=8081
refused "serviceAccount.name is required when serviceAccount.create is false" --set serviceAccount.create=false
refused "metrics.serviceMonitor.enabled needs metrics.port" --set metrics.port=0 --set metrics.serviceMonitor.enabled=true
refused "chart requires kubeVersion: >=1.26.0-0 which is incompatible with Kubernetes v1.25.4" --kube-version v1.25.4
refused "replicaCount is 2 but history.persistence.enabled is true: .*Run one replica" --set replicaCount=2 \
  --set history.persistence.enabled=true
refused "history.maxBytes: Does not match pattern" --set history.maxBytes=lots
refused "history.maxBytes: Does not match pattern" --set history.maxBytes=1.5Gi
refused "history.persistence.accessModes.0: .*ReadWriteOnce.*ReadWriteOncePod" \
  --set 'history.persistence.accessModes=[ReadOnlyMany]'
refused "history.persistence.accessModes: Array must have at least 1 items" --set 'history.persistence.accessModes=[]'
refused "history.persistence.size: Does not match pattern" --set history.persistence.size=2GB
refused "history.persistence: Additional property storageClass is not allowed" --set history.persistence.storageClass=ssd
refused "history.persistence.enabled needs history.enabled" --set history.enabled=false --set history.persistence.enabled=true
refused "history.maxBytes \(2Gi\) must be at most 3/4 of history.persistence.size \(2Gi\)" \
  --set history.persistence.enabled=true --set history.maxBytes=2Gi
refused "history.maxBytes \(1Gi\) must be at most 3/4 of history.persistence.emptyDirSizeLimit \(1Gi\)" \
  --set history.persistence.emptyDirSizeLimit=1Gi
refused "history.maxBytes is 0 .* but history.persistence.emptyDirSizeLimit is 1Gi" \
  --set history.persistence.emptyDirSizeLimit=1Gi --set history.maxBytes=0

# --- 4. Apply to kube-emulator with real kubectl -----------------------------
"$EMULATOR" --clusters host --dir "$WORK/emu" --control-port 0 >"$WORK/emulator.log" 2>&1 &
EMU_PID=$!
for _ in $(seq 100); do [[ -s "$WORK/emu/emulator.json" ]] && break; sleep 0.1; done
export KUBECONFIG=$WORK/emu/host.kubeconfig
k() { kubectl --request-timeout=20s "$@"; }
# kube-emulator serves no OpenAPI documents, which kubectl's client-side
# validation downloads; every apply here says --validate=false (the demo does
# the same).
applied() {  # applied <what> <kubectl apply args...>
  local what=$1; shift
  if k apply --validate=false "$@" >"$WORK/apply.out" 2>&1; then
    pass "kubectl apply $what: $(wc -l <"$WORK/apply.out") objects"
  else
    fail "kubectl apply $what:"$'\n'"$(cat "$WORK/apply.out")"
  fi
}
# (kubectl create namespace sends protobuf, which kube-emulator reads only for
# the review kinds; apply sends JSON.)
printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n---\n' kubefold-system fleet shop |
  k apply --validate=false -f - >/dev/null
# What helm install does first: the chart's crds/ directory.
applied "charts/kubefold/crds/" -f "$CHART/crds/"
applied "third-party CRD stand-ins" -f "$HERE/fixtures/third-party-crds.yaml"
k wait --for condition=established --timeout=20s crd --all >/dev/null
applied "default values" -f "$WORK/default.yaml"

SA=system:serviceaccount:kubefold-system:kubefold
can() {  # can <yes|no> <can-i args...>
  local want=$1; shift
  local got
  got=$(k auth can-i --as "$SA" "$@" 2>/dev/null || true)
  if [[ "$got" == "$want" ]]; then
    pass "can-i $*: $got"
  else
    fail "can-i $*: want $want, got '${got:-error}'"
  fi
}
# What kubefold does, and nothing more.
can yes list memberclusters.kubefold.io
can yes watch memberclusters.kubefold.io
can yes patch memberclusters.kubefold.io --subresource=status
can yes list failoverpolicies.kubefold.io -A
can yes patch failoverpolicies.kubefold.io -n shop
can yes patch failoverpolicies.kubefold.io -n shop --subresource=status
can yes create failoveraudits.kubefold.io -n shop
can yes patch failoveraudits.kubefold.io -n shop --subresource=status
can yes create events -n shop
can yes patch events -n shop
can yes create tokenreviews.authentication.k8s.io
can yes create subjectaccessreviews.authorization.k8s.io
can yes list secrets -A
can yes watch secrets -n fleet
can yes create leases.coordination.k8s.io -n kubefold-system
can yes get leases.coordination.k8s.io/kubefold -n kubefold-system
can yes update leases.coordination.k8s.io/kubefold -n kubefold-system
can no update leases.coordination.k8s.io/someone-else -n kubefold-system
can no create leases.coordination.k8s.io -n default
can no delete memberclusters.kubefold.io
can no update memberclusters.kubefold.io
can no create memberclusters.kubefold.io
can no delete failoveraudits.kubefold.io -n shop
can no create secrets -n kubefold-system
can no update secrets -n kubefold-system
can no get secrets/one -n kubefold-system
can no list pods -A
can no create deployments.apps -n shop
can no get services/proxy -n kubefold-system

# helm upgrade to the ha values: same release, same objects updated.
applied "ha values (upgrade)" -f "$WORK/ha.yaml"
if [[ $(k -n kubefold-system get deployment kubefold -o jsonpath='{.spec.replicas}') == 3 ]] &&
   k -n kubefold-system get poddisruptionbudget kubefold >/dev/null 2>&1; then
  pass "upgrade: 3 replicas and a PodDisruptionBudget"
else
  fail "upgrade: the Deployment or the PodDisruptionBudget was not updated"
fi
# kubectl apply prunes nothing by itself: the ClusterRole's Secret rule is
# gone because the ClusterRole was updated, the Roles are new.
can yes list secrets -n fleet
can yes list secrets -n kubefold-system
can no list secrets -n default
can no list secrets -A
versions() {
  k get serviceaccounts,roles,rolebindings,services,deployments,poddisruptionbudgets,pods -n kubefold-system \
    -o jsonpath='{range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion}{"\n"}{end}'
  k get clusterroles,clusterrolebindings -l app.kubernetes.io/instance=kubefold \
    -o jsonpath='{range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion}{"\n"}{end}'
}
versions >"$WORK/versions.before"
applied "ha values again" -f "$WORK/ha.yaml"
versions >"$WORK/versions.after"
# kubectl reports the PodDisruptionBudget "configured" on every apply, against
# a real server too: its spec.selector has patch strategy "replace", so the
# patch kubectl computes is never empty. What matters is that no object
# changed.
if grep -v -e " unchanged$" -e "^poddisruptionbudget.policy/kubefold configured$" "$WORK/apply.out" | grep -q .; then
  fail "re-applying changed something:"$'\n'"$(grep -v ' unchanged$' "$WORK/apply.out")"
elif ! cmp -s "$WORK/versions.before" "$WORK/versions.after"; then
  fail "re-applying changed resourceVersions:"$'\n'"$(diff "$WORK/versions.before" "$WORK/versions.after")"
else
  pass "re-applying the same rendering changes no object ($(wc -l <"$WORK/versions.after") resourceVersions unchanged)"
fi
applied "tls values (release fold)" -f "$WORK/tls.yaml"
applied "minimal values (release mini)" -f "$WORK/minimal.yaml"
if [[ $(k -n kubefold-system get servicemonitor fold -o jsonpath='{.spec.endpoints[0].scheme}') == https &&
      $(k -n kubefold-system get certificate fold -o jsonpath='{.spec.secretName}') == fold-tls ]]; then
  pass "tls: the ServiceMonitor and Certificate are served back as rendered"
else
  fail "tls: ServiceMonitor or Certificate missing"
fi

# The history's claim, release keep: kube-emulator serves no
# PersistentVolumeClaims, so the claim is applied only where the server has
# them; the Deployment that mounts it is applied either way.
if k api-resources --api-group= -o name 2>/dev/null | grep -qx persistentvolumeclaims; then
  applied "persistence values (release keep)" -f "$WORK/persistence.yaml"
else
  python3 - "$WORK/persistence.yaml" >"$WORK/persistence-noclaim.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
print(yaml.safe_dump_all([d for d in docs if d["kind"] != "PersistentVolumeClaim"], sort_keys=False), end="")
PY
  pass "persistence: kube-emulator serves no PersistentVolumeClaims; applying the rendering without its claim"
  applied "persistence values without the claim (release keep)" -f "$WORK/persistence-noclaim.yaml"
fi
if [[ $(k -n kubefold-system get deployment keep-kubefold -o jsonpath='{.spec.strategy.type}') == Recreate &&
      $(k -n kubefold-system get deployment keep-kubefold \
          -o jsonpath='{.spec.template.spec.volumes[?(@.name=="history")].persistentVolumeClaim.claimName}') == keep-kubefold-history ]]; then
  pass "persistence: the Deployment is served back with the Recreate strategy and the history claim"
else
  fail "persistence: the Deployment's strategy or history volume did not come back as rendered"
fi

# --- 5. The values table in the README --------------------------------------
if out=$(python3 "$SRC/scripts/chart-values-doc.py" --check "$CHART" 2>&1); then
  pass "$out"
else
  fail "$out"
fi

if ((failures > 0)); then
  echo "chart_test: $failures check(s) failed"
  exit 1
fi
echo "chart_test: all checks passed"

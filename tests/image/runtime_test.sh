#!/usr/bin/env bash
# image_runtime_test: runs kubefold from the container image's file set, as
# the image would run in a Pod, against kube-emulator.
#
# scripts/assemble-runtime.sh builds the directory the Dockerfile copies
# into a `FROM scratch` image; no Docker engine runs here, so this test runs
# the operator inside that directory with chroot, as user 65532:65532, with
# `env -i` plus only what a Pod of the chart's Deployment gets (its env, the
# variables kubelet and the container runtime add, and the service-account
# files at /var/run/secrets/kubernetes.io/serviceaccount), and the chart's
# arguments. Where the kernel allows (as root it does), the process gets its
# own mount and PID namespaces as in a container: /proc and a minimal /dev
# are mounted, and kubefold is PID 1 (which ignores every signal it does not
# handle, so a SIGTERM that only works on other PIDs fails here).
#
# It catches a shared library the image lacks, a file the binaries expect
# (the CA bundle, the loader), and any write outside /tmp (the emptyDir).
# Checks: /healthz and /readyz answer 200; the operator holds the Lease; a
# member cluster whose kubeconfig names no CA is verified through the
# image's system trust store and becomes Ready; the query API answers the
# plugin, which also runs inside the tree; every log line is JSON; the
# process runs as 65532 without capabilities; nothing in the tree changed
# except under /tmp; SIGTERM ends it with exit code 0 and releases the
# Lease.
#
# usage: runtime_test.sh KUBEFOLD KUBECTL_KUBEFOLD KUBE_EMULATOR SOURCE_DIR CHART_RENDER
# Needs root (chroot, the switch to uid 65532, mounts); CI runs as root.
set -euo pipefail

NAME=image_runtime_test
say() { printf '%s: %s\n' "$NAME" "$*"; }

if (($# != 5)); then
  echo "usage: $0 KUBEFOLD KUBECTL_KUBEFOLD KUBE_EMULATOR SOURCE_DIR CHART_RENDER" >&2
  exit 2
fi
KUBEFOLD=$1 PLUGIN=$2 EMULATOR=$3 SRC=$4 RENDER=$5

if ((EUID != 0)); then
  echo "$NAME: FAIL: this test needs root: it runs kubefold under chroot as user 65532" \
    "(chroot, setuid and mounts need root). CI runs as root; by hand: sudo ctest -R $NAME" >&2
  exit 1
fi
for tool in kubectl curl chroot unshare mount mknod sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$NAME: FAIL: '$tool' not found" >&2; exit 1; }
done
# Debian's interpreter, with PyYAML (python3-yaml) for the rendered chart.
PYTHON=/usr/bin/python3
[[ -x "$PYTHON" ]] || PYTHON=$(command -v python3) || { echo "$NAME: FAIL: python3 not found" >&2; exit 1; }
for f in "$KUBEFOLD" "$PLUGIN" "$EMULATOR" "$RENDER"; do
  [[ -x "$f" ]] || { echo "$NAME: FAIL: not built: $f" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/kubefold-image-test-XXXXXX)
ROOTFS=$WORK/rootfs
EMU_DIR=$WORK/emulator
OP_LOG=$WORK/kubefold.log
EMU_PID="" LAUNCH_PID="" OP_PID=""

cleanup() {
  local pid
  for pid in "$OP_PID" "$LAUNCH_PID" "$EMU_PID"; do
    if [[ -n "$pid" ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  for pid in "$LAUNCH_PID" "$EMU_PID"; do
    if [[ -n "$pid" ]]; then wait "$pid" 2>/dev/null || true; fi
  done
  # The mounts under $ROOTFS live only in the namespaces of the processes
  # just killed: from here the mount points are empty directories.
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

fail() {
  echo "$NAME: FAIL: $*" >&2
  if [[ -s "$OP_LOG" ]]; then
    echo "--- kubefold log (last 40 lines) ---" >&2
    tail -n 40 "$OP_LOG" >&2
  fi
  if [[ -s "$WORK/emulator.log" ]]; then
    echo "--- kube-emulator log (last 10 lines) ---" >&2
    tail -n 10 "$WORK/emulator.log" >&2
  fi
  exit 1
}

# poll SECONDS COMMAND...: runs COMMAND every 0.2 s until it succeeds (0) or
# SECONDS pass (1). Once kubefold is started, its exit fails the test at
# once (a missing library, a refused flag, a crash).
poll() {
  local deadline=$((SECONDS + $1)) rc
  shift
  until "$@" >/dev/null 2>&1; do
    if [[ -n "$LAUNCH_PID" ]] && ! kill -0 "$LAUNCH_PID" 2>/dev/null; then
      rc=0
      wait "$LAUNCH_PID" || rc=$?
      LAUNCH_PID="" OP_PID=""
      fail "kubefold exited with status $rc while the test waited for it"
    fi
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}
# wait_for SECONDS WHAT COMMAND...: poll, or fail naming WHAT.
wait_for() {
  local limit=$1 what=$2
  shift 2
  poll "$limit" "$@" || fail "timed out after ${limit}s waiting for $what"
}

# --- 1. the image's file set ------------------------------------------------
say "assembling the runtime file set"
KUBEFOLD_BINARY=$KUBEFOLD KUBECTL_KUBEFOLD_BINARY=$PLUGIN \
  bash "$SRC/scripts/assemble-runtime.sh" "$ROOTFS" >"$WORK/assemble.log" 2>&1 \
  || { cat "$WORK/assemble.log" >&2; fail "scripts/assemble-runtime.sh failed"; }
head -n 1 "$WORK/assemble.log"

# --- 2. the host cluster ------------------------------------------------------
say "starting kube-emulator (cluster host)"
"$EMULATOR" --clusters host --dir "$EMU_DIR" --control-port 0 >"$WORK/emulator.log" 2>&1 &
EMU_PID=$!
wait_for 20 "kube-emulator's emulator.json" test -s "$EMU_DIR/emulator.json"
SERVER=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["clusters"][0]["url"])' "$EMU_DIR/emulator.json")
[[ "$SERVER" =~ ^https://127\.0\.0\.1:([0-9]+)$ ]] || fail "unexpected host URL in emulator.json: $SERVER"
API_PORT=${BASH_REMATCH[1]}
k() { kubectl --kubeconfig "$EMU_DIR/host.kubeconfig" "$@"; }

k apply --validate=false -f "$SRC/crds/" >/dev/null || fail "kubectl apply -f crds/ failed"
k wait --for condition=established --timeout=20s crd/memberclusters.kubefold.io \
  crd/failoverpolicies.kubefold.io crd/failoveraudits.kubefold.io >/dev/null || fail "the CRDs are not established"
# (kubectl's imperative `create` sends protobuf, which the emulator refuses.)
printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kubefold-system\n' |
  k apply --validate=false -f - >/dev/null || fail "cannot create namespace kubefold-system"

# --- 3. what kubelet and the container runtime add to the image ---------------
# The service-account volume (projected: token, ca.crt, namespace; mode 0644).
SA=$ROOTFS/var/run/secrets/kubernetes.io/serviceaccount
mkdir -p "$SA"
cp "$EMU_DIR/host.token" "$SA/token"
cp "$EMU_DIR/ca.crt" "$SA/ca.crt"
printf 'kubefold-system' >"$SA/namespace"
chmod 0644 "$SA/token" "$SA/ca.crt" "$SA/namespace"
# Mount points the runtime creates for /proc and /dev.
mkdir -p "$ROOTFS/proc" "$ROOTFS/dev"
# Stand-in for a member cluster whose API server has a certificate from a
# public CA: the emulator's CA joins the image's bundle, and the member's
# kubeconfig names no CA, so the TLS handshake succeeds only if OpenSSL
# finds the bundle where the image puts it.
cat "$EMU_DIR/ca.crt" >>"$ROOTFS/etc/ssl/certs/ca-certificates.crt"

# As in the image: everything root's and not writable by others, but /tmp.
chown -hR 0:0 "$ROOTFS"
chmod -R go-w "$ROOTFS"
chmod 1777 "$ROOTFS/tmp"
# The history volume the chart mounts (an emptyDir or a claim) stands in here.
mkdir -p "$ROOTFS/var/lib/kubefold"
chown 65532:65532 "$ROOTFS/var/lib/kubefold"

# Every path outside /tmp with its type, mode, owner, size, link target and
# mtime, and a checksum of every file.
tree_state() {
  (
    cd "$ROOTFS"
    find . \( -path './tmp/*' -o -path ./var/lib/kubefold \) -prune -o -printf '%p %y %m %U:%G %s %T@ %l\n' | LC_ALL=C sort
    find . \( -path './tmp/*' -o -path ./var/lib/kubefold \) -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  )
}
tree_state >"$WORK/tree.before"

# --- 4. running "in the Pod" ------------------------------------------------
POD_NAME=kubefold-7d9f-abcde
POD_ENV=(
  # The chart's Deployment (downward API).
  "POD_NAME=$POD_NAME"
  "POD_NAMESPACE=kubefold-system"
  # Kubelet: the kubernetes Service in the default namespace.
  "KUBERNETES_SERVICE_HOST=127.0.0.1"
  "KUBERNETES_SERVICE_PORT=$API_PORT"
  "KUBERNETES_SERVICE_PORT_HTTPS=$API_PORT"
  "KUBERNETES_PORT=tcp://127.0.0.1:$API_PORT"
  "KUBERNETES_PORT_${API_PORT}_TCP=tcp://127.0.0.1:$API_PORT"
  "KUBERNETES_PORT_${API_PORT}_TCP_PROTO=tcp"
  "KUBERNETES_PORT_${API_PORT}_TCP_PORT=$API_PORT"
  "KUBERNETES_PORT_${API_PORT}_TCP_ADDR=127.0.0.1"
  # The container runtime: its default PATH (the image sets none), the pod's
  # host name, HOME from the image's /etc/passwd.
  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  "HOSTNAME=$POD_NAME"
  "HOME=/nonexistent"
)

# In new mount and PID namespaces: /proc, and a /dev with the nodes every
# container runtime creates; then `env -i` and chroot as 65532:65532. The
# mounts vanish with the namespace.
# shellcheck disable=SC2016  # expanded by the inner bash
CONTAINER_SETUP='set -eu
root=$1; shift
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t tmpfs -o nosuid,noexec,mode=0755,size=64k tmpfs "$root/dev"
mknod -m 0666 "$root/dev/null" c 1 3
mknod -m 0666 "$root/dev/zero" c 1 5
mknod -m 0666 "$root/dev/full" c 1 7
mknod -m 0666 "$root/dev/random" c 1 8
mknod -m 0666 "$root/dev/urandom" c 1 9
mknod -m 0666 "$root/dev/tty" c 5 0
exec "$@"'
NAMESPACES=true
if ! unshare --mount --propagation private --pid --fork true 2>/dev/null; then
  NAMESPACES=false
  say "warning: cannot create mount and PID namespaces here; running under chroot alone" \
    "(no /proc, no /dev, kubefold not PID 1)"
fi

# image_command COMMAND ARGS...: sets CMD to the command line that runs
# /usr/local/bin/COMMAND inside the tree (a global, so that `"${CMD[@]}" &`
# makes $! the launcher itself rather than a subshell around it).
CHROOT=$(command -v chroot)
image_command() {
  local bin=/usr/local/bin/$1
  shift
  CMD=(env -i "${POD_ENV[@]}" "$CHROOT" --userspec=65532:65532 "$ROOTFS" "$bin" "$@")
  if $NAMESPACES; then
    CMD=(unshare --mount --propagation private --pid --fork --kill-child --
      bash -c "$CONTAINER_SETUP" container-setup "$ROOTFS" "${CMD[@]}")
  fi
}
in_image() {
  image_command "$@"
  "${CMD[@]}"
}

say "starting kubefold in the tree as 65532:65532 with the Pod's environment"
# The container's arguments as the chart renders them (default values), then
# ephemeral ports (tests run in parallel; the last of a repeated flag wins).
"$RENDER" --chart "$SRC/charts/kubefold" --skip-tests >"$WORK/chart.yaml" || fail "chart-render failed"
mapfile -t CHART_ARGS < <("$PYTHON" -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "Deployment":
        print("\n".join(d["spec"]["template"]["spec"]["containers"][0]["args"]))' "$WORK/chart.yaml")
((${#CHART_ARGS[@]} > 0)) || fail "no container args in the rendered Deployment"
image_command kubefold "${CHART_ARGS[@]}" \
  --api-bind-address=:0 --metrics-bind-address=127.0.0.1:0 --health-probe-bind-address=:0
"${CMD[@]}" >"$OP_LOG" 2>&1 &
LAUNCH_PID=$!

# The operator's own PID: with namespaces, unshare's child (which execs
# the setup, env, chroot and kubefold in turn).
is_kubefold() { [[ -n "$OP_PID" && "$(readlink "/proc/$OP_PID/exe" 2>/dev/null)" == "$ROOTFS/usr/local/bin/kubefold" ]]; }
find_operator() {
  if $NAMESPACES; then
    OP_PID=$(awk '{print $1}' "/proc/$LAUNCH_PID/task/$LAUNCH_PID/children" 2>/dev/null)
  else
    OP_PID=$LAUNCH_PID
  fi
  is_kubefold
}
wait_for 20 "kubefold to start in the tree" find_operator

# serving_port WHAT: the port of "serving WHAT on HOST:PORT" in the JSON log.
serving_port() {
  "$PYTHON" - "$OP_LOG" "$1" <<'EOF'
import json, re, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        msg = json.loads(line).get("msg", "")
    except ValueError:
        continue
    m = re.match(r"serving " + re.escape(sys.argv[2]) + r" on \S*:(\d+) ", msg)
    if m:
        print(m.group(1))
        sys.exit(0)
sys.exit(1)
EOF
}
wait_for 20 "kubefold to serve its probes" serving_port "health probes"
PROBE_PORT=$(serving_port "health probes")
METRICS_PORT=$(serving_port metrics) || fail "kubefold did not log its metrics address"
QUERY_PORT=$(serving_port "the query API") || fail "kubefold did not log its query API address"

# --- 5. checks while it runs --------------------------------------------------
probe() { [[ "$(curl -fsS --max-time 2 "http://127.0.0.1:$PROBE_PORT/$1")" == ok ]]; }
wait_for 20 "/healthz to answer 200" probe healthz
wait_for 30 "/readyz to answer 200" probe readyz
say "/healthz and /readyz answer 200 ok"

holder() { [[ "$(k -n kubefold-system get lease kubefold -o jsonpath='{.spec.holderIdentity}')" == "$1" ]]; }
wait_for 30 "kubefold to hold the Lease kubefold-system/kubefold" holder "$POD_NAME"
say "the Lease is held by $POD_NAME"

# Who it runs as: 65532 everywhere, no other group, no capabilities.
status=/proc/$OP_PID/status
# field NAME: the values of "NAME:" in its status, separated by one space.
field() { awk -v f="$1:" '$1 == f {$1 = ""; sub(/^ /, ""); print}' "$status"; }
[[ "$(field Uid)" == "65532 65532 65532 65532" ]] || fail "Uid (real, effective, saved, fs) is '$(field Uid)', not 65532"
[[ "$(field Gid)" == "65532 65532 65532 65532" ]] || fail "Gid (real, effective, saved, fs) is '$(field Gid)', not 65532"
[[ "$(field Groups)" == "" || "$(field Groups)" == 65532 ]] || fail "supplementary groups: '$(field Groups)'"
[[ "$(field CapEff)" == 0000000000000000 ]] || fail "effective capabilities: $(field CapEff)"
if $NAMESPACES; then
  nspid=$(field NSpid)
  [[ "${nspid##* }" == 1 ]] || fail "kubefold is not PID 1 in its namespace (NSpid: $nspid)"
  say "kubefold runs as 65532:65532, no capabilities, PID 1 of its PID namespace"
else
  say "kubefold runs as 65532:65532, no capabilities"
fi

# A member cluster checked through the image's trust store (see above).
"$PYTHON" - "$SERVER" "$EMU_DIR/host.token" >"$WORK/member.kubeconfig" <<'EOF'
import sys
server, token = sys.argv[1], open(sys.argv[2]).read().strip()
print(f"""apiVersion: v1
kind: Config
clusters: [{{name: self, cluster: {{server: "{server}"}}}}]
users: [{{name: self, user: {{token: "{token}"}}}}]
contexts: [{{name: self, context: {{cluster: self, user: self}}}}]
current-context: self""")
EOF
cat <<EOF | k apply --validate=false -f - >/dev/null || fail "cannot create MemberCluster self and its Secret"
apiVersion: v1
kind: Secret
metadata: {name: self-kubeconfig, namespace: kubefold-system}
data:
  kubeconfig: $(base64 -w0 "$WORK/member.kubeconfig")
---
apiVersion: kubefold.io/v1alpha1
kind: MemberCluster
metadata:
  name: self
spec:
  kubeconfigSecretRef: {namespace: kubefold-system, name: self-kubeconfig}
  health: {periodSeconds: 1, failureThreshold: 2, gracePeriodSeconds: 2}
EOF
member_ready() { [[ "$(k get membercluster self -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]; }
if ! poll 30 member_ready; then
  k get membercluster self -o jsonpath='{.status.conditions}' >&2 || true
  echo >&2
  fail "MemberCluster self (no CA in its kubeconfig) did not become Ready: the image's trust store was not used"
fi
say "MemberCluster self is Ready: TLS verified through the image's CA bundle"

curl -fsS --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics" >"$WORK/metrics.txt" || fail "GET /metrics failed"
grep -q '^kubefold_build_info' "$WORK/metrics.txt" || fail "/metrics has no kubefold_build_info"
if $NAMESPACES; then
  grep -Eq '^process_resident_memory_bytes [1-9]' "$WORK/metrics.txt" \
    || fail "/metrics has no process_resident_memory_bytes (is /proc readable in the container?)"
fi
say "/metrics answers"

# The plugin, inside the tree too: its own version, then the operator's
# query API (listening on every interface, so the bearer token, here the
# in-cluster one, is checked with TokenReview and SubjectAccessReview).
in_image kubectl-kubefold version --client >"$WORK/plugin.out" 2>&1 \
  || { cat "$WORK/plugin.out" >&2; fail "kubectl-kubefold version --client failed inside the tree"; }
grep -q '^Client Version: ' "$WORK/plugin.out" || { cat "$WORK/plugin.out" >&2; fail "unexpected version output"; }
in_image kubectl-kubefold --server-url "http://127.0.0.1:$QUERY_PORT" clusters >"$WORK/plugin.out" 2>&1 \
  || { cat "$WORK/plugin.out" >&2; fail "kubectl-kubefold clusters failed inside the tree"; }
grep -Eq '^self[[:space:]]' "$WORK/plugin.out" || { cat "$WORK/plugin.out" >&2; fail "kubectl-kubefold clusters does not list self"; }
say "kubectl-kubefold runs inside the tree: $(grep -E '^self[[:space:]]' "$WORK/plugin.out" | tr -s ' ')"

# --- 6. SIGTERM ---------------------------------------------------------------
say "SIGTERM"
kill -TERM "$OP_PID"
# --shutdown-timeout is 25s; the pod's grace period 30s.
deadline=$((SECONDS + 30))
while kill -0 "$OP_PID" 2>/dev/null && is_kubefold; do
  ((SECONDS < deadline)) || fail "kubefold still runs 30s after SIGTERM"
  sleep 0.2
done
rc=0
wait "$LAUNCH_PID" || rc=$?
LAUNCH_PID="" OP_PID=""
((rc == 0)) || fail "kubefold exited with status $rc after SIGTERM, not 0"
holder "" || fail "the Lease still names a holder after the shutdown: $(k -n kubefold-system get lease kubefold -o jsonpath='{.spec.holderIdentity}')"
say "kubefold exited 0 and released the Lease"

# --- 7. its log and its writes ------------------------------------------------
"$PYTHON" - "$OP_LOG" <<'EOF' || fail "kubefold's log is not all JSON (--log-format=json)"
import json, sys
lines = [l for l in open(sys.argv[1], errors="replace").read().splitlines() if l.strip()]
bad = []
for l in lines:
    try:
        j = json.loads(l)
        ok = isinstance(j, dict) and all(isinstance(j.get(k), str) for k in ("ts", "level", "msg"))
    except ValueError:
        ok = False
    if not ok:
        bad.append(l)
for l in bad[:10]:
    print("not a JSON log line:", l, file=sys.stderr)
if not lines:
    print("the log is empty", file=sys.stderr)
sys.exit(1 if bad or not lines else 0)
EOF
grep -q '"msg":"stopped"' "$OP_LOG" || fail "the log does not end with \"stopped\""
say "$(wc -l <"$OP_LOG") log lines, all JSON"
[ -s "$ROOTFS/var/lib/kubefold/history.db" ] || fail "no history file on the history volume (the chart's --history-file)"
say "history written to the history volume: $(stat -c %s "$ROOTFS/var/lib/kubefold/history.db") bytes"

tree_state >"$WORK/tree.after"
if ! diff -u "$WORK/tree.before" "$WORK/tree.after" >"$WORK/tree.diff"; then
  cat "$WORK/tree.diff" >&2
  fail "the tree changed outside /tmp while kubefold ran (above: - before, + after)"
fi
say "nothing in the tree changed outside /tmp ($(find "$ROOTFS/tmp" -mindepth 1 | wc -l) entries under /tmp)"
say "PASS"

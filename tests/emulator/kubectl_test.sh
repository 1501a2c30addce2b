#!/usr/bin/env bash
# Drives real kubectl (v1.32, /usr/bin/kubectl) against kube-emulator: every
# command must work unchanged, as it would against a real cluster.
#
# usage: kubectl_test.sh <path to kube-emulator> [repository root]
set -euo pipefail

EMULATOR=${1:?usage: kubectl_test.sh <kube-emulator> [repo root]}
ROOT=${2:-$(cd "$(dirname "$0")/../.." && pwd)}
DATA="$ROOT/tests/emulator/testdata"
KUBECTL=${KUBECTL:-kubectl}

WORK=$(mktemp -d)
EMU_PID=
WATCH_PID=
BACKEND_PID=
cleanup() {
  [[ -n "$WATCH_PID" ]] && kill "$WATCH_PID" 2>/dev/null || true
  [[ -n "$BACKEND_PID" ]] && kill "$BACKEND_PID" 2>/dev/null || true
  [[ -n "$EMU_PID" ]] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$EMULATOR" --clusters east,west --dir "$WORK/emu" >"$WORK/emulator.log" 2>&1 &
EMU_PID=$!
for _ in $(seq 200); do [[ -f "$WORK/emu/emulator.json" ]] && break; sleep 0.05; done
[[ -f "$WORK/emu/emulator.json" ]] || { cat "$WORK/emulator.log"; echo "kube-emulator did not start"; exit 1; }

export KUBECONFIG="$WORK/emu/kubeconfig"   # both clusters as contexts, tokenFile users
# The emulator serves no OpenAPI documents (README): client-side validation off.
k() { "$KUBECTL" --request-timeout=20s "$@"; }

failures=0
pass() { printf 'ok   %s\n' "$1"; }
fail() { printf 'FAIL %s\n' "$1"; failures=$((failures + 1)); }
# expect <name> <expected substring> <command...>: the command succeeds and
# its output contains the substring.
expect() {
  local name=$1 want=$2; shift 2
  local out
  if out=$("$@" 2>&1) && grep -qF -- "$want" <<<"$out"; then pass "$name"; else
    fail "$name"; printf '  wanted: %s\n  got: %s\n' "$want" "$out"; fi
}
# expect_error <name> <expected substring> <command...>: the command fails
# and says so.
expect_error() {
  local name=$1 want=$2; shift 2
  local out
  if ! out=$("$@" 2>&1) && grep -qF -- "$want" <<<"$out"; then pass "$name"; else
    fail "$name"; printf '  wanted failure with: %s\n  got: %s\n' "$want" "$out"; fi
}
# expect_match <name> <extended regex> <command...>: the command succeeds and
# a line of its output matches the regex.
expect_match() {
  local name=$1 want=$2; shift 2
  local out
  if out=$("$@" 2>&1) && grep -qE -- "$want" <<<"$out"; then pass "$name"; else
    fail "$name"; printf '  wanted a line matching: %s\n  got: %s\n' "$want" "$out"; fi
}
# wait_for <name> <file> <substring>: the file gets the substring within 15 s.
wait_for() {
  local name=$1 file=$2 want=$3
  for _ in $(seq 150); do grep -qF -- "$want" "$file" 2>/dev/null && { pass "$name"; return; }; sleep 0.1; done
  fail "$name"; printf '  wanted %s in:\n' "$want"; cat "$file"
}

expect "version reaches the server" "Server Version: v1.32.0" k version
expect "api-resources lists deployments" "deployments.apps" k api-resources -o name
expect "api-resources lists leases" "coordination.k8s.io/v1" k api-resources
expect "contexts from the merged kubeconfig" "west" k config get-contexts

expect "apply creates a deployment" "deployment.apps/web created" k apply --validate=false -f "$DATA/web-deployment.yaml"
expect "apply again is unchanged" "deployment.apps/web unchanged" k apply --validate=false -f "$DATA/web-deployment.yaml"
# Server-side printing: kubectl asks for as=Table and prints the server's columns.
expect_match "get deployments prints the Deployment printer's columns" "^NAME +READY +UP-TO-DATE +AVAILABLE +AGE$" k get deployments
expect_match "a deployment row shows READY as ready/desired" "^web +0/2 +0 +0 +[0-9]+s$" k get deployment web
expect_match "-o wide adds containers, images and selector" "^web +0/2 +0 +0 +[0-9]+s +nginx +nginx:1.27 +app=web$" k get deployment web -o wide
expect_match "get namespaces prints STATUS" "^default +Active +[0-9]+" k get namespaces
expect_match "get --sort-by (includeObject=Object) still works" "^default +Active" k get namespaces --sort-by=.metadata.name
sed 's/nginx:1.27/nginx:1.28/' "$DATA/web-deployment.yaml" >"$WORK/web2.yaml"
expect "apply of a changed image configures it" "deployment.apps/web configured" k apply --validate=false -f "$WORK/web2.yaml"
expect "the image changed" "nginx:1.28" k get deployment web -o jsonpath='{.spec.template.spec.containers[0].image}'
expect "the env list was merged, not replaced" "blue" k get deployment web -o jsonpath='{.spec.template.spec.containers[0].env[0].value}'

expect "get -A shows namespaces of every object" "kube-system" k get leases,configmaps,namespaces -A
expect "get -A lists the deployment" "web" k get deployments -A
expect "get by short name" "web" k get deploy

# A watch that receives live changes.
k get configmaps -w --output-watch-events >"$WORK/watch.out" 2>&1 &
WATCH_PID=$!
sleep 1
# (kubectl's imperative `create configmap` sends protobuf, which the emulator
# does not speak — README; objects from files go as JSON.)
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: live-one\ndata:\n  a: b\n' | k create --validate=false -f - >/dev/null
wait_for "get -w sees a create" "$WORK/watch.out" "live-one"
wait_for "get -w prints the server's columns" "$WORK/watch.out" "DATA"
k patch configmap live-one --type=merge -p '{"data":{"a":"c"}}' >/dev/null
wait_for "get -w sees a change" "$WORK/watch.out" "MODIFIED"
k delete configmap live-one >/dev/null
wait_for "get -w sees a delete" "$WORK/watch.out" "DELETED"
kill "$WATCH_PID" 2>/dev/null || true
WATCH_PID=

expect "strategic patch" "deployment.apps/web patched" k patch deployment web -p '{"spec":{"replicas":3}}'
expect "merge patch" "deployment.apps/web patched" k patch deployment web --type=merge -p '{"metadata":{"labels":{"tier":"front"}}}'
expect "json patch" "deployment.apps/web patched" k patch deployment web --type=json -p '[{"op":"replace","path":"/spec/replicas","value":4}]'
expect "patches landed" "4" k get deployment web -o jsonpath='{.spec.replicas}'
expect "updates are tracked in managedFields, one entry per manager" "kubectl-client-side-apply kubectl-patch" \
  k get deployment web --show-managed-fields -o jsonpath='{.metadata.managedFields[*].manager}'
expect_error "a patch of a missing object is NotFound" 'deployments.apps "nope" not found' k patch deployment nope -p '{"spec":{"replicas":1}}'
sed 's/name: web$/name: Bad_Name/' "$DATA/web-deployment.yaml" >"$WORK/bad.yaml"
expect_error "an invalid deployment is refused" 'The Deployment "Bad_Name" is invalid: metadata.name' k create --validate=false -f "$WORK/bad.yaml"

expect "server-side apply creates" "serverside-applied" k apply --server-side --validate=false -f "$DATA/web-deployment.yaml" -n kube-public
sed 's/replicas: 2/replicas: 5/' "$DATA/web-deployment.yaml" >"$WORK/web5.yaml"
expect_error "a second manager conflicts" "conflict" k apply --server-side --validate=false --field-manager=other -f "$WORK/web5.yaml" -n kube-public
expect "force-conflicts takes the field" "serverside-applied" k apply --server-side --validate=false --field-manager=other --force-conflicts -f "$WORK/web5.yaml" -n kube-public
expect "the forced value landed" "5" k get deployment web -n kube-public -o jsonpath='{.spec.replicas}'
expect "managed fields name both managers" "other" k get deployment web -n kube-public --show-managed-fields -o yaml

expect "apply of a CRD" "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created" k apply --validate=false -f "$DATA/widget-crd.yaml"
expect "wait for the CRD to be established" "condition met" k wait --for condition=established --timeout=20s crd/widgets.example.com
expect "the CRD shows up in discovery" "widgets" k api-resources --api-group=example.com
expect_match "get crds prints the default table (NAME, CREATED AT)" "^widgets.example.com +[0-9]{4}-[0-9]{2}-[0-9]{2}T" k get crds
expect_match "get crds has the CREATED AT header" "^NAME +CREATED AT$" k get crds
expect "apply of a custom resource" "widget.example.com/small created" k apply --validate=false -f "$DATA/widget.yaml"
expect "get of a custom resource by short name" "small" k get wd
# kubefold's own CRDs, their examples, schema defaults and validation.
for crd in "$ROOT"/crds/*.yaml; do
  [[ -f "$crd" ]] || continue
  expect "apply of crds/$(basename "$crd")" "created" k apply --validate=false -f "$crd"
done
if [[ -f "$ROOT/crds/membercluster.yaml" ]]; then
  k wait --for condition=established --timeout=20s crd/memberclusters.kubefold.io crd/failoverpolicies.kubefold.io >/dev/null
  printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n' | k create --validate=false -f - >/dev/null
  expect "a MemberCluster from the example" "membercluster.kubefold.io/east created" k apply --validate=false -f "$ROOT/crds/examples/membercluster.yaml"
  expect "its defaults are filled in" "kubeconfig /readyz 10" k get mc east -o jsonpath='{.spec.kubeconfigSecretRef.key} {.spec.health.probePath} {.spec.health.periodSeconds}'
  # The CRD's additionalPrinterColumns: priority-0 ones in `get`, all with -o wide.
  columns=$(k get crd memberclusters.kubefold.io -o jsonpath='{.spec.versions[0].additionalPrinterColumns[*].name}' | tr '[:lower:]' '[:upper:]') || true
  wide_only=$(k get crd memberclusters.kubefold.io -o jsonpath='{.spec.versions[0].additionalPrinterColumns[?(@.priority==1)].name}' | tr '[:lower:]' '[:upper:]') || true
  # `sed -n 1p` reads everything (with `head` kubectl could die of SIGPIPE,
  # which pipefail and set -e turn into a silent exit of this script); a
  # failure here is reported by the check below, not by set -e.
  header=$(k get memberclusters 2>&1 | sed -n 1p) || true
  wide_header=$(k get memberclusters -o wide 2>&1 | sed -n 1p) || true
  bad=
  for c in $columns; do
    if grep -qw -- "$c" <<<"$wide_only"; then
      grep -qw -- "$c" <<<"$header" && bad+=" $c(shown without -o wide)"
    else
      grep -qw -- "$c" <<<"$header" || bad+=" $c(missing)"
    fi
    grep -qw -- "$c" <<<"$wide_header" || bad+=" $c(missing with -o wide)"
  done
  if [[ -n "$columns" && -z "$bad" && "$header" == NAME* ]]; then pass "get memberclusters prints the CRD's printer columns ($columns)"; else
    fail "get memberclusters prints the CRD's printer columns"; printf '  columns: %s\n  problems:%s\n  get: %s\n  -o wide: %s\n' "$columns" "$bad" "$header" "$wide_header"; fi
  expect_match "get memberclusters has READY and AGE" "^NAME +READY .* AGE$" k get memberclusters
  k patch mc east --subresource=status --type=merge -p '{"status":{"conditions":[{"type":"Ready","status":"True","lastTransitionTime":"2024-01-01T00:00:00Z","reason":"Probed","message":"ok"}]}}' >/dev/null
  expect_match "the READY column shows the Ready condition's status" "^east +True " k get memberclusters
  expect "a FailoverPolicy from the example" "failoverpolicy.kubefold.io/web created" k apply --validate=false -f "$ROOT/crds/examples/failoverpolicy.yaml"
  expect "the category lists them" "east" k get kubefold -A
  sed 's/clusters: \[east, west, north\]/clusters: []/' "$ROOT/crds/examples/failoverpolicy.yaml" >"$WORK/bad-policy.yaml"
  expect_error "a policy without clusters is refused" "spec.clusters in body should have at least 1 items" k apply --validate=false -f "$WORK/bad-policy.yaml"
  sed 's/mode: Manual/mode: Sometimes/' "$ROOT/crds/examples/failoverpolicy.yaml" >"$WORK/bad-mode.yaml"
  expect_error "an unknown failback mode is refused" 'Unsupported value: "Sometimes"' k apply --validate=false -f "$WORK/bad-mode.yaml"
fi

# --- users, RBAC, reviews, the services proxy ------------------------------
CONTROL=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control"])' "$WORK/emu/emulator.json")
curl -sf -XPOST "$CONTROL/clusters/east/users/alice?uid=u-alice&group=devs" >"$WORK/alice.json"
ALICE_TOKEN=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$WORK/alice.json")
ka() { "$KUBECTL" --request-timeout=20s --kubeconfig "$WORK/emu/east-alice.kubeconfig" "$@"; }
expect "whoami for an added user" "devs system:authenticated" ka auth whoami
# can-i exits 1 when the answer is no.
expect_error "can-i says no without a binding" "no" ka auth can-i list pods
expect_error "a denied list is the real 403" \
  'Error from server (Forbidden): pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"' \
  ka get pods
cat >"$WORK/rbac.yaml" <<'YAML'
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: default}
rules:
- apiGroups: [""]
  resources: ["pods", "services"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["services/proxy"]
  resourceNames: ["echo:80", "https:echo:443", "lonely"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-reads, namespace: default}
subjects:
- kind: User
  name: alice
roleRef:
  kind: Role
  name: reader
  apiGroup: rbac.authorization.k8s.io
YAML
expect "apply of a Role and a RoleBinding" "rolebinding.rbac.authorization.k8s.io/alice-reads created" k apply --validate=false -f "$WORK/rbac.yaml"
expect_match "get rolebindings prints ROLE" "^alice-reads +Role/reader +[0-9]+s$" k get rolebindings
expect_match "get rolebindings -o wide prints USERS" "^alice-reads +Role/reader +[0-9]+s +alice" k get rolebindings -o wide
expect_match "get clusterroles prints CREATED AT" "^cluster-admin +[0-9]{4}-" k get clusterroles
expect "can-i says yes once bound" "yes" ka auth can-i list pods
expect_error "can-i stays no in another namespace" "no" ka auth can-i list pods -n kube-system
expect "can-i for a subresource and name" "yes" ka auth can-i get services/proxy/echo:80
expect "can-i --as asks for the impersonated user" "yes" k auth can-i list pods --as alice
expect "the user can list now" "No resources found" ka get pods
# TokenReview and SubjectAccessReview with kubectl create --raw (JSON).
printf '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"%s"}}' "$ALICE_TOKEN" >"$WORK/tr.json"
expect "a TokenReview authenticates the user" '"authenticated":true,"user":{"username":"alice","uid":"u-alice","groups":["devs","system:authenticated"]}' \
  k create --raw /apis/authentication.k8s.io/v1/tokenreviews -f "$WORK/tr.json"
printf '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"bogus"}}' >"$WORK/tr-bad.json"
expect "a TokenReview of an unknown token" '"status":{"user":{},"error":"invalid bearer token"}' \
  k create --raw /apis/authentication.k8s.io/v1/tokenreviews -f "$WORK/tr-bad.json"
printf '{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"alice","resourceAttributes":{"namespace":"default","verb":"list","resource":"pods"}}}' >"$WORK/sar.json"
expect "a SubjectAccessReview is allowed with the binding as reason" \
  '"status":{"allowed":true,"reason":"RBAC: allowed by RoleBinding \"alice-reads/default\" of Role \"reader\" to User \"alice\""}' \
  k create --raw /apis/authorization.k8s.io/v1/subjectaccessreviews -f "$WORK/sar.json"
expect_error "alice may not create TokenReviews" 'cannot create resource "tokenreviews" in API group "authentication.k8s.io" at the cluster scope' \
  ka create --raw /apis/authentication.k8s.io/v1/tokenreviews -f "$WORK/tr.json"
# The services proxy to backends on this host's non-loopback address
# (Endpoints may not be loopback, as on a real server), plain and HTTPS.
HOST_IP=$(/usr/bin/python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.connect(("192.0.2.1", 9)); print(s.getsockname()[0])
except OSError:
    print("")')
if [[ -n "$HOST_IP" && "$HOST_IP" != 127.* ]]; then
  cat >"$WORK/backend.py" <<'PY'
import http.server, json, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = json.dumps({"path": self.path, "authorization": self.headers.get("Authorization"),
                           "tls": isinstance(self.connection, ssl.SSLSocket)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
plain = http.server.ThreadingHTTPServer((sys.argv[1], 0), H)
secure = http.server.ThreadingHTTPServer((sys.argv[1], 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
secure.socket = ctx.wrap_socket(secure.socket, server_side=True)
import threading
threading.Thread(target=secure.serve_forever, daemon=True).start()
print(plain.server_address[1], secure.server_address[1], flush=True)
plain.serve_forever()
PY
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=echo \
    -keyout "$WORK/backend.key" -out "$WORK/backend.crt" >/dev/null 2>&1
  /usr/bin/python3 "$WORK/backend.py" "$HOST_IP" "$WORK/backend.crt" "$WORK/backend.key" >"$WORK/backend.ports" 2>&1 &
  BACKEND_PID=$!
  for _ in $(seq 100); do [[ -s "$WORK/backend.ports" ]] && break; sleep 0.05; done
  read -r PLAIN_PORT TLS_PORT <"$WORK/backend.ports"
  cat >"$WORK/echo.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: echo-0}
spec: {containers: [{name: echo, image: echo}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  ports: [{name: http, port: 80}, {name: https, port: 443}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: echo}
subsets:
- addresses: [{ip: "$HOST_IP", targetRef: {kind: Pod, name: echo-0, namespace: default}}]
  ports: [{name: http, port: $PLAIN_PORT}, {name: https, port: $TLS_PORT}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: lonely}
YAML
  k apply --validate=false -f "$WORK/echo.yaml" >/dev/null
  k patch pod echo-0 --subresource=status --type=merge -p "{\"status\":{\"podIPs\":[{\"ip\":\"$HOST_IP\"}]}}" >/dev/null
  # The query goes through as sent (kubectl adds timeout= for --request-timeout).
  expect "get --raw through the proxy reaches the backend" '{"path": "/some/path?timeout=20s&x=1", "authorization": null, "tls": false}' \
    ka get --raw '/api/v1/namespaces/default/services/echo:80/proxy/some/path?x=1'
  expect "the proxy speaks HTTPS to an https: backend" '{"path": "/secure?timeout=20s", "authorization": null, "tls": true}' \
    ka get --raw '/api/v1/namespaces/default/services/https:echo:443/proxy/secure'
  expect_error "proxy without services/proxy for that name is a 403" \
    'services "echo:81" is forbidden: User "alice" cannot get resource "services/proxy" in API group "" in the namespace "default"' \
    ka get --raw '/api/v1/namespaces/default/services/echo:81/proxy/'
  expect_error "a service without endpoints is a 503" 'no endpoints available for service "lonely"' \
    ka get --raw '/api/v1/namespaces/default/services/lonely/proxy/'
  kill "$BACKEND_PID" 2>/dev/null || true
else
  echo "skip services proxy checks: no non-loopback address"
fi

expect "delete" 'deployment.apps "web" deleted' k delete deployment web
expect_error "deleted means gone" 'deployments.apps "web" not found' k get deployment web
expect "another context is another cluster" "No resources found" k --context west get deployments

if ((failures > 0)); then
  echo "kubectl_test: $failures check(s) failed"
  exit 1
fi
echo "kubectl_test: all checks passed"

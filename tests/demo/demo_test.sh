#!/usr/bin/env bash
# Runs README's main job (scripts/demo.sh, what `make demo` runs after the
# build) end to end and checks what it printed: the failover happened under
# the chart's RBAC, the audit completed with pinned before/after snapshots,
# `kubectl kubefold audit --diff` shows web added on west, east healed, and
# kubefold stopped cleanly — all within the two minutes the README promises.
#
# usage: demo_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
SRC=$1 BUILD=$2
LOGS=$(mktemp -d /tmp/kubefold-demo-test-XXXXXX)
trap 'rm -rf "$LOGS"' EXIT

begin=$SECONDS
rc=0
BUILD=$BUILD DEMO_LOG_DIR=$LOGS bash "$SRC/scripts/demo.sh" >"$LOGS/out" 2>&1 || rc=$?
took=$((SECONDS - begin))
cat "$LOGS/out"
echo "----- demo_test: the demo took ${took}s, exit $rc -----"

failures=0
expect() {  # expect <description> <grep -E pattern> [file]
  if grep -qE -- "$2" "${3:-$LOGS/out}"; then
    echo "ok   $1"
  else
    echo "FAIL $1 (no line matches /$2/)"
    failures=$((failures + 1))
  fi
}
refute() {  # refute <description> <grep -E pattern> <file>
  if grep -qiE -- "$2" "$3"; then
    echo "FAIL $1:"; grep -iE -- "$2" "$3" | head -5
    failures=$((failures + 1))
  else
    echo "ok   $1"
  fi
}
((rc == 0)) && echo "ok   the demo exits 0" || { echo "FAIL the demo exited $rc"; failures=$((failures + 1)); }
((took < 120)) && echo "ok   the demo ran in ${took}s (< 120s)" || { echo "FAIL the demo took ${took}s"; failures=$((failures + 1)); }
expect "kubefold runs with the chart's ServiceAccount and holds the Lease" "waiting for the leader-election Lease \.\.\. done"
expect "the whatif answer names the move" "^shop/web +shop +Deployment +web +east +west +Apply"
expect "web is re-created on west as kubefold's copy" "^web .*kubefold\.io/failover-copy=true"
expect "the audit completed with before/after snapshots" "^web-west-[0-9a-f]+ +web +east +west +Completed +[0-9]+ +[0-9]+"
expect "the diff shows web added on west" "^added +west +shop +Deployment +web"
expect "the diff's summary" "from seq [0-9]+ .* to seq [0-9]+ .*: 1 added, 0 removed, 0 modified"
expect "both snapshots are pinned by the audit" "^[0-9]+ .* 1 +shop/web-west-[0-9a-f]+$"
expect "the failover metric" '^kubefold_failovers_total\{namespace="shop",policy="web",from="east",to="west",result="completed"\} 1'
expect "east is healed and Ready again" "waiting for east to be Ready again \.\.\. done"
expect "kubefold stops cleanly on SIGTERM" "kubefold exited with status 0"
expect "the final line" "== Done: east failed, web moved to west, and FailoverAudit web-west-[0-9a-f]+ pins the snapshots before and after\."
if [[ -f $LOGS/kubefold.log ]]; then
  # The chart's RBAC must be enough for everything kubefold did.
  # As a refusal reaches the log (rest_client.cpp, StatusFromResponse): a bare
  # "403" also matched ports such as 127.0.0.1:39403.
  refute "kubefold's log has no refused request" "forbidden|permission_denied|HTTP 403" "$LOGS/kubefold.log"
  refute "kubefold's log has no error" "\berror\b" "$LOGS/kubefold.log"
else
  echo "FAIL kubefold's log was not kept"; failures=$((failures + 1))
fi
# The chart's RBAC against what kubefold did on the host (kube-emulator's
# authorization log): everything it needed is granted, everything granted
# was needed.
if [[ -f $LOGS/host.authorization.log && -f $LOGS/chart.yaml ]]; then
  if python3 "$SRC/tests/demo/rbac_usage.py" "$LOGS/chart.yaml" "$LOGS/host.authorization.log" \
       system:serviceaccount:kubefold-system:kubefold >"$LOGS/rbac" 2>&1; then
    cat "$LOGS/rbac"
  else
    cat "$LOGS/rbac"; failures=$((failures + 1))
  fi
else
  echo "FAIL the host's authorization log or the chart rendering was not kept"; failures=$((failures + 1))
fi
# No cluster's token (the members' are in the Secrets kubefold reads; the
# ServiceAccount's is kubefold's own) shows in its log or anything the demo
# printed: kubectl kubefold's answers, the audit, the metrics.
if [[ -s $LOGS/tokens ]]; then
  leaked=0
  while read -r token; do
    [[ -n $token ]] || continue
    if grep -qF -- "$token" "$LOGS/out" "$LOGS/kubefold.log" 2>/dev/null; then leaked=$((leaked + 1)); fi
  done <"$LOGS/tokens"
  if ((leaked == 0)); then
    echo "ok   none of the $(grep -c . "$LOGS/tokens") cluster tokens appears in kubefold's log or the demo's output"
  else
    echo "FAIL $leaked cluster token(s) appear in kubefold's log or the demo's output"; failures=$((failures + 1))
  fi
else
  echo "FAIL the clusters' tokens were not kept"; failures=$((failures + 1))
fi
((failures == 0)) || { echo "demo_test: $failures check(s) failed"; exit 1; }
echo "demo_test: all checks passed"

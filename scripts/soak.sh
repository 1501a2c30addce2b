#!/usr/bin/env bash
# The long chaos soak: tests/operator/soak_test.cpp for a given duration.
#
# usage: scripts/soak.sh SECONDS [SEED]
#
# Five emulated member clusters, two kubefold replicas with leader election
# and durable history, a steady stream of workload changes, and faults
# injected at random for SECONDS (partitions, dropped and stalled watches,
# 410 storms, 429 and 5xx bursts, slow and split streams, token rotation
# with Secret changes, replica restarts and leader handoffs). Then faults
# stop and the invariants are checked (see the test's header). Prints the
# figures: events folded, faults by kind, relists, restarts, handoffs,
# failovers and peak memory. Loopback only; stops by itself. CI runs the
# same test for 20 s as part of `make test`.
#
# SEED repeats a run's random choices (the test prints the one it used).
set -euo pipefail
SECONDS_ARG=${1:?usage: scripts/soak.sh SECONDS [SEED]}
[[ "$SECONDS_ARG" =~ ^[0-9]+$ && "$SECONDS_ARG" -gt 0 ]] || {
  echo "soak: SECONDS must be a positive integer, not \"$SECONDS_ARG\"" >&2
  exit 2
}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
make build >/dev/null
export KUBEFOLD_SOAK_SECONDS=$SECONDS_ARG
[[ -n "${2:-}" ]] && export KUBEFOLD_SOAK_SEED=$2
LOG=$(mktemp "${TMPDIR:-/tmp}/kubefold-soak-XXXXXX.log")
echo "soak: ${SECONDS_ARG} s of faults; log in $LOG"
set +e
build/tests/soak_test --log_level=message >"$LOG" 2>&1
rc=$?
set -e
grep -E "soak seed|soak [0-9]+ s:" "$LOG" | sed 's/\x1b\[[0-9;]*m//g'
if [[ $rc -ne 0 ]]; then
  echo "soak: FAILED (exit $rc); the failures:" >&2
  grep -E "error|fatal" "$LOG" | sed 's/\x1b\[[0-9;]*m//g' | head -40 >&2
  exit "$rc"
fi
echo "soak: every invariant held"

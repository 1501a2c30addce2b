#!/usr/bin/env bash
# docs_alerts_test: docs/alerts.yaml is a valid Prometheus rules file and its
# unit tests (docs/alerts_test.yaml) pass: each alert fires on the input
# series meant to trigger it, and none fires on a healthy operator.
#
# usage: tests/docs/alerts_test.sh ROOT
set -euo pipefail
ROOT=${1:?usage: alerts_test.sh ROOT}
if ! command -v promtool >/dev/null 2>&1; then
  echo "docs_alerts_test: promtool is not installed (Debian package prometheus; scripts/install-deps.sh installs it)" >&2
  exit 1
fi
# promtool resolves rule_files relative to the test file; run from docs/ so
# the messages name the files as the repository does.
cd "$ROOT/docs"
promtool check rules alerts.yaml
promtool test rules alerts_test.yaml

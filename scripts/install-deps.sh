#!/usr/bin/env bash
# Installs every Debian 12 package kubefold needs to build, test and benchmark.
# Fast when everything is present already: it only asks dpkg, and runs
# `apt-get update` + `apt-get install` only for packages that are missing.
set -euo pipefail

PACKAGES=(
  # Toolchain and build tools
  build-essential g++ cmake ninja-build ccache make pkg-config git
  # Test framework (Boost.Test)
  libboost-test-dev
  # Benchmarks: Google Benchmark, and TBB only as a baseline to compare against
  libbenchmark-dev libtbb-dev
  # Libraries the code uses: xxHash for trie keys and content hashes, JSON,
  # YAML (kubeconfig files are YAML)
  libxxhash-dev nlohmann-json3-dev libyaml-cpp-dev
  # Compressed workload objects in the store (zstd with per-kind dictionaries)
  libzstd-dev
  # Parsing what API servers send (watch lines, lists): simdjson
  libsimdjson-dev
  # Memory allocator of the programs (see CMakeLists.txt, "Memory allocator")
  libjemalloc-dev
  # Durable snapshot history: SQLite (WAL mode, transactions, crash safety)
  libsqlite3-dev
  # HTTP client (cpprestsdk, kept behind controllers/kube/transport.h) and TLS
  libcpprest-dev libssl-dev
  # Command-line flags of the programs (header-only)
  libcli11-dev
  # A second real Kubernetes client to check the API-server emulator with
  python3-kubernetes
  # Clang with its runtime libraries, for fuzz targets (libFuzzer)
  clang-14 libclang-rt-14-dev
  # promtool, which metrics_test runs to lint the /metrics exposition
  prometheus
  # Rendering the Helm chart in tests (helm itself is not packaged): Go, and
  # the libraries Helm's engine is built on: sprig, yaml, gojsonschema
  golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v2-dev
  golang-gopkg-yaml.v3-dev golang-github-xeipuuv-gojsonschema-dev
  # The demo's and tests' glue: curl for the emulator's control endpoint,
  # PyYAML for checking rendered manifests, CA roots for the runtime image
  curl python3-yaml ca-certificates
)

log() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

is_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

command -v dpkg-query >/dev/null 2>&1 \
  || die "dpkg-query not found; this script supports Debian 12 (apt/dpkg) only."

missing=()
for pkg in "${PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  log "all ${#PACKAGES[@]} packages already installed; nothing to do."
  exit 0
fi

log "missing: ${missing[*]}"

SUDO=()
if ((EUID != 0)); then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    die "must run as root to install packages (sudo is not available). Run as root: apt-get install ${missing[*]}"
  fi
fi

# Another apt/dpkg may hold the lock (unattended upgrades, a parallel job):
# apt waits for it up to DPkg::Lock::Timeout, and each step is retried a few
# times on top of that.
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -o DPkg::Lock::Timeout=300)

retry() {
  local attempt
  for attempt in 1 2 3; do
    "$@" && return 0
    log "attempt ${attempt} failed: $*"
    ((attempt < 3)) && sleep 15
  done
  return 1
}

retry "${APT[@]}" update || die "apt-get update failed"
retry "${APT[@]}" install --no-install-recommends "${missing[@]}" \
  || die "apt-get install failed for: ${missing[*]}"

still_missing=()
for pkg in "${missing[@]}"; do
  is_installed "$pkg" || still_missing+=("$pkg")
done
((${#still_missing[@]} == 0)) || die "still not installed: ${still_missing[*]}"

log "installed: ${missing[*]}"

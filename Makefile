# kubefold — user-facing entry points. The build itself is CMake + Ninja.
#
#   make demo        build, then a failover and its audit against emulated
#                    clusters (HOST_KUBECONFIG=<file>: kubefold against a real host;
#                    DEMO_ARGS=--keep: keep it running for exploration)
#   make test        build everything and run the full test suite
#   make check       test + ThreadSanitizer + AddressSanitizer/UBSan runs
#   make bench-state state/ benchmarks, JSON in build/bench/state.json
#   make bench-journal the durable history's cost to folding, build/bench/journal.json
#   make bench-watch   emulator -> reflector over loopback TLS, decode against
#                      nlohmann's parse, build/bench/watch.json
#   make bench-failover  N clusters x W workloads on the emulator: threshold
#                      crossed -> apply issued / audit completed, operator
#                      memory per workload, build/bench/failover.json
#
# Variables: JOBS (build parallelism, default: nproc), CTEST_JOBS (default 2),
# BENCH_ARGS (extra Google Benchmark flags, e.g. --benchmark_filter=Diff).

JOBS       ?= $(shell nproc)
CTEST_JOBS ?= 2
BENCH_ARGS ?=
FUZZ_SECONDS ?= 60

CMAKE ?= cmake
CTEST ?= ctest

# ThreadSanitizer and AddressSanitizer in GCC 12 fail at start-up on kernels
# configured with more mmap randomisation than they expect
# (vm.mmap_rnd_bits > 28); there the sanitizer runs go without ASLR.
SAN_LAUNCH := $(shell test "$$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)" -gt 28 \
                && echo "setarch $$(uname -m) -R")

# Sanitizer and fuzz builds keep line tables only (-g1): their reports need
# file:line, not variables, and full DWARF made them a third slower to build.
# ASan+UBSan builds at -O1, as the ASan documentation suggests: at -O2 GCC 12
# compiles the instrumented code nearly twice as slowly (88 s against 49 s
# for tests/emulator/api.cpp).
TSAN_FLAGS := -DKUBEFOLD_SANITIZE=thread -DCMAKE_BUILD_TYPE=RelWithDebInfo \
              "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
ASAN_FLAGS := -DKUBEFOLD_SANITIZE=address -DCMAKE_BUILD_TYPE=RelWithDebInfo \
              "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"

# Runs CMake's configure step in $(1) with flags $(2), only when $(1) has not
# been configured yet (Ninja re-runs CMake by itself when CMakeLists change).
configure = test -f $(1)/build.ninja || $(CMAKE) -G Ninja -S . -B $(1) $(2)

# The targets share build directories and a 2-core machine; run them in order.
.NOTPARALLEL:

.PHONY: all deps build demo test test-tsan test-asan bench-state bench-watch bench-failover bench-api bench-journal fuzz check clean

all: build

deps:
	bash scripts/install-deps.sh

build: deps
	$(call configure,build,-DKUBEFOLD_WERROR=ON)
	$(CMAKE) --build build --parallel $(JOBS)

demo: build
	HOST_KUBECONFIG="$(HOST_KUBECONFIG)" bash scripts/demo.sh $(DEMO_ARGS)

test: build
	$(CTEST) --test-dir build --output-on-failure --no-tests=error -j$(CTEST_JOBS)

test-tsan: deps
	$(call configure,build-tsan,$(TSAN_FLAGS))
	$(CMAKE) --build build-tsan --parallel $(JOBS)
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  $(SAN_LAUNCH) $(CTEST) --test-dir build-tsan --output-on-failure --no-tests=error -j$(CTEST_JOBS)

test-asan: deps
	$(call configure,build-asan,$(ASAN_FLAGS))
	$(CMAKE) --build build-asan --parallel $(JOBS)
	ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" \
	UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
	  $(SAN_LAUNCH) $(CTEST) --test-dir build-asan --output-on-failure --no-tests=error -j$(CTEST_JOBS)

# bench-<name> builds <name>_bench in build-bench/ (Release) and writes
# build/bench/<name>.json.
bench-state bench-watch bench-failover bench-api bench-journal: bench-%: deps
	$(call configure,build-bench,-DCMAKE_BUILD_TYPE=Release -DKUBEFOLD_BUILD_BENCH=ON)
	$(CMAKE) --build build-bench --parallel $(JOBS) --target $*_bench
	mkdir -p build/bench
	build-bench/tests/bench/$*_bench \
	  --benchmark_out=build/bench/$*.json --benchmark_out_format=json $(if $(filter api,$*),--benchmark_enable_random_interleaving=true) $(BENCH_ARGS)

# Each fuzz target runs FUZZ_SECONDS from its seed corpus (copied, so runs
# never write into the source tree); a crash fails the target and leaves the
# reproducer in build-fuzz/.
fuzz: deps
	$(call configure,build-fuzz,-DCMAKE_CXX_COMPILER=clang++-14 -DKUBEFOLD_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG")
	$(CMAKE) --build build-fuzz --parallel $(JOBS) --target fuzz_targets
	set -e; for t in build-fuzz/tests/fuzz/*_fuzz; do \
	  name=$$(basename $$t _fuzz); mkdir -p build-fuzz/corpus/$$name; \
	  cp -n tests/fuzz/corpus/$$name/* build-fuzz/corpus/$$name/ 2>/dev/null || true; \
	  echo "fuzz: $$name for $(FUZZ_SECONDS) s"; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=build-fuzz/ build-fuzz/corpus/$$name; \
	done

check: test test-tsan test-asan

clean:
	rm -rf build build-tsan build-asan build-bench build-fuzz

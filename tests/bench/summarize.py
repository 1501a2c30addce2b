#!/usr/bin/env python3
"""Summarizes state_bench's JSON output as Markdown: the goal table, then the
raw figures per operation, implementation and workload count.

Usage: tests/bench/summarize.py [build/bench/state.json]

Benchmark names are BM_<Op>_<impl>/<N>[/suffix...]. Where repetitions exist the
median aggregate is used; otherwise the median of the plain runs. Times are the
benchmark thread's CPU time (what Google Benchmark's items_per_second uses),
except for benchmarks registered with UseRealTime (ReadIdle, ReadUnderWrite).
Standard library only.
"""

import json
import statistics
import sys
from collections import defaultdict

TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
SIZES = (10000, 100000, 1000000)
BIG = 1000000
SMALL = 10000


def parse_name(run_name):
    """'BM_Fold_kubefold/1000000/repeats:3' -> ('Fold', 'kubefold', 1000000)."""
    parts = run_name.split("/")
    head = parts[0].split("_")
    if len(head) < 3 or head[0] != "BM":
        return None
    numbers = [int(p) for p in parts[1:] if p.isdigit()]
    if not numbers:
        return None
    return head[1], "_".join(head[2:]), numbers[-1]


def load(path):
    with open(path) as f:
        data = json.load(f)
    medians = {}                 # key -> entry (median aggregate)
    runs = defaultdict(list)     # key -> plain iteration entries
    errors = {}
    for b in data.get("benchmarks", []):
        key = parse_name(b.get("run_name", b["name"]))
        if key is None:
            continue
        if b.get("error_occurred"):
            errors[key] = b.get("error_message", "error")
            continue
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                medians[key] = b
        else:
            runs[key].append(b)
    return data.get("context", {}), medians, runs, errors


class Results:
    def __init__(self, medians, runs, errors):
        self.medians, self.runs, self.errors = medians, runs, errors

    def keys(self):
        return sorted(set(self.medians) | set(self.runs) | set(self.errors),
                      key=lambda k: (k[0], k[1], k[2]))

    def get(self, op, impl, n, field):
        """A figure: 'time_ns' (real time per iteration, in ns) or a counter.
        None when absent."""
        key = (op, impl, n)

        def value(entry):
            if field == "time_ns":
                # CPU time of the benchmark thread, as items_per_second uses,
                # except where the benchmark asked for real time.
                which = "real_time" if "/real_time" in entry.get("name", "") else "cpu_time"
                return entry[which] * TO_NS[entry.get("time_unit", "ns")]
            v = entry.get(field)
            return float(v) if isinstance(v, (int, float)) else None

        if key in self.medians:
            return value(self.medians[key])
        vals = [v for v in (value(e) for e in self.runs.get(key, [])) if v is not None]
        return statistics.median(vals) if vals else None

    def error(self, op, impl, n):
        return self.errors.get((op, impl, n))


def fmt_time(ns):
    if ns is None:
        return "n/a"
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.1f} ns"


def fmt_rate(v):
    if v is None:
        return "n/a"
    if v >= 1e6:
        return f"{v / 1e6:.2f} M/s"
    if v >= 1e3:
        return f"{v / 1e3:.1f} k/s"
    return f"{v:.0f} /s"


def fmt_bytes(v):
    if v is None:
        return "n/a"
    if abs(v) >= 1 << 30:
        return f"{v / (1 << 30):.2f} GiB"
    if abs(v) >= 1 << 20:
        return f"{v / (1 << 20):.1f} MiB"
    return f"{v:.1f} B"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r):
    if r is None:
        return "n/a"
    return f"{r:.2f}x" if r >= 0.01 else f"{r:.1e}x"


def verdict(ok):
    if ok is None:
        return "NO DATA"
    return "PASS" if ok else "MISS"


def goal_rows(r):
    rows = []

    def add(goal, measured, baseline, rat, ok):
        rows.append((goal, measured, baseline, fmt_ratio(rat), ok))

    # Fold
    ours = r.get("Fold", "kubefold", BIG, "items_per_second")
    tbb = r.get("Fold", "tbb", BIG, "items_per_second")
    add("Fold @1M: kubefold >= 1M events/s",
        f"kubefold {fmt_rate(ours)}", f"tbb {fmt_rate(tbb)}", ratio(ours, 1e6),
        verdict(None if ours is None else ours >= 1e6))
    add("Fold @1M: kubefold >= 0.5x tbb",
        f"kubefold {fmt_rate(ours)}", f"tbb {fmt_rate(tbb)}", ratio(ours, tbb),
        verdict(None if ratio(ours, tbb) is None else ratio(ours, tbb) >= 0.5))

    # Diff
    d_big = r.get("Diff", "kubefold", BIG, "time_ns")
    d_small = r.get("Diff", "kubefold", SMALL, "time_ns")
    deep = r.get("Diff", "deepcopy", BIG, "time_ns")
    add("Diff @1M (1000 changes): kubefold <= 2 ms",
        f"kubefold {fmt_time(d_big)}", f"deepcopy full scan {fmt_time(deep)}", ratio(d_big, deep),
        verdict(None if d_big is None else d_big <= 2e6))
    add("Diff: time @1M <= 1.5x time @10k",
        f"@1M {fmt_time(d_big)}", f"@10k {fmt_time(d_small)}", ratio(d_big, d_small),
        verdict(None if ratio(d_big, d_small) is None else ratio(d_big, d_small) <= 1.5))

    c_big = r.get("DiffCold", "kubefold", BIG, "time_ns")
    c_small = r.get("DiffCold", "kubefold", SMALL, "time_ns")
    add("info: Diff from a cold cache, @1M vs @10k",
        f"@1M {fmt_time(c_big)}", f"@10k {fmt_time(c_small)}", ratio(c_big, c_small), "info")
    # The same pair diffed by walking the tries (older pairs, composed views).
    for op in ("DiffWalk", "DiffWalkCold"):
        w_big = r.get(op, "kubefold", BIG, "time_ns")
        w_small = r.get(op, "kubefold", SMALL, "time_ns")
        add(f"info: {op} (the walk), @1M vs @10k",
            f"@1M {fmt_time(w_big)}", f"@10k {fmt_time(w_small)}", ratio(w_big, w_small), "info")

    # Lookup
    for n in SIZES:
        lo = r.get("Lookup", "kubefold", n, "time_ns")
        sh = r.get("Lookup", "sharded", n, "time_ns")
        rat = ratio(lo, sh)
        add(f"Lookup @{label(n)}: kubefold <= 3x sharded",
            f"kubefold {fmt_time(lo)}", f"sharded {fmt_time(sh)}", rat,
            verdict(None if rat is None else rat <= 3.0))

    # Memory, with plain records and with records kept zstd-compressed as the
    # operator stores member objects by default (--compress-objects), where
    # "payload" is key + frame.
    deep_over = r.get("Memory", "deepcopy", BIG, "bytes_per_workload_overhead")
    deep_heap = r.get("Memory", "deepcopy", BIG, "heap_bytes_per_workload")
    deep_copy = None if deep_heap is None else deep_heap * BIG
    for impl, what in (("kubefold", ""), ("kubefold_zstd", ", objects compressed")):
        over = r.get("Memory", impl, BIG, "bytes_per_workload_overhead")
        heap = r.get("Memory", impl, BIG, "heap_bytes_per_workload")
        add(f"Memory @1M{what}: overhead <= 64 B/workload beyond payload",
            f"{impl} {fmt_bytes(over)} (heap {fmt_bytes(heap)}/workload)", f"deepcopy {fmt_bytes(deep_over)}",
            ratio(over, deep_over), verdict(None if over is None else over <= 64))
        stats_over = r.get("Memory", impl, BIG, "stats_overhead_per_workload")
        add(f"Memory @1M{what}: overhead by the store's own accounting (no malloc slack)",
            f"{impl} {fmt_bytes(stats_over)}", f"deepcopy {fmt_bytes(deep_over)}", ratio(stats_over, deep_over),
            verdict(None if stats_over is None else stats_over <= 64))
        ret = r.get("Memory", impl, BIG, "bytes_retained_per_change")
        ret_x = r.get("Memory", impl, BIG, "bytes_retained_per_change_excl_old_payload")
        ret_stats = r.get("Memory", impl, BIG, "stats_retained_bytes_per_change")
        ret_hdr = r.get("Memory", impl, BIG, "stats_snapshot_header_bytes_per_change")
        cross = None if ret_stats is None or ret_hdr is None else ret_stats + ret_hdr
        add(f"Memory @1M{what}: retained per unbatched change <= 1.5 KB",
            f"{impl} {fmt_bytes(ret)} ({fmt_bytes(ret_x)} w/o old record payload; "
            f"store accounting: {fmt_bytes(cross)} objects + snapshot headers)",
            f"deepcopy: one full copy {fmt_bytes(deep_copy)}", ratio(ret, deep_copy),
            verdict(None if ret is None else ret <= 1536))

    # Readers under a full-speed writer
    w = r.get("ReadUnderWrite", "kubefold", BIG, "p99_ns")
    i = r.get("ReadIdle", "kubefold", BIG, "p99_ns")
    rat = ratio(w, i)
    add("Lookup p99 @1M under a full-speed writer <= 2x idle p99",
        f"under write {fmt_time(w)}, idle {fmt_time(i)}",
        f"sharded {fmt_time(r.get('ReadUnderWrite', 'sharded', BIG, 'p99_ns'))} / "
        f"{fmt_time(r.get('ReadIdle', 'sharded', BIG, 'p99_ns'))}", rat,
        verdict(None if rat is None else rat <= 2.0))

    # Informational (no target given)
    s_big = r.get("Snapshot", "kubefold", BIG, "time_ns")
    s_small = r.get("Snapshot", "kubefold", SMALL, "time_ns")
    add("info: Snapshot @1M vs @10k (O(1))",
        f"@1M {fmt_time(s_big)}", f"@10k {fmt_time(s_small)}", ratio(s_big, s_small), "info")
    for impl in ("cowatomic", "sharded", "deepcopy"):
        b = r.get("Snapshot", impl, BIG, "time_ns")
        add(f"info: Snapshot @1M kubefold vs {impl}",
            f"kubefold {fmt_time(s_big)}", f"{impl} {fmt_time(b)}", ratio(s_big, b), "info")
    for field, what in (("p99_ns", "p99"), ("p99_unpreempted_ns", "p99 of unpreempted blocks")):
        for impl in ("kubefold", "sharded"):
            w = r.get("ReadUnderWrite", impl, BIG, field)
            i = r.get("ReadIdle", impl, BIG, field)
            add(f"info: {impl} read {what}, under write / idle @1M",
                f"under write {fmt_time(w)}", f"idle {fmt_time(i)}", ratio(w, i), "info")
        rk = r.get("ReadUnderWrite", "kubefold", BIG, field)
        rs = r.get("ReadUnderWrite", "sharded", BIG, field)
        add(f"info: read {what} under write @1M, kubefold vs sharded",
            f"kubefold {fmt_time(rk)}", f"sharded {fmt_time(rs)}", ratio(rk, rs), "info")
    return rows


def label(n):
    return {10000: "10k", 100000: "100k", 1000000: "1M"}.get(n, str(n))


MAIN_FIGURE = {
    "Snapshot": ("time_ns", fmt_time),
    "Lookup": ("time_ns", fmt_time),
    "Diff": ("time_ns", fmt_time),
    "DiffVisit": ("time_ns", fmt_time),
    "DiffCold": ("time_ns", fmt_time),
    "DiffWalk": ("time_ns", fmt_time),
    "DiffWalkCold": ("time_ns", fmt_time),
    "Fold": ("items_per_second", fmt_rate),
}


def raw_rows(r):
    rows = []
    for op, impl, n in r.keys():
        err = r.error(op, impl, n)
        if err:
            rows.append((op, impl, label(n), "ERROR: " + err))
            continue
        if op in MAIN_FIGURE:
            field, fmt = MAIN_FIGURE[op]
            text = fmt(r.get(op, impl, n, field))
            if op == "Fold":
                text += f" ({fmt_time(r.get(op, impl, n, 'time_ns'))} per batch of 256)"
        elif op in ("ReadIdle", "ReadUnderWrite"):
            text = (f"p50 {fmt_time(r.get(op, impl, n, 'p50_ns'))}, "
                    f"p99 {fmt_time(r.get(op, impl, n, 'p99_ns'))}, "
                    f"p99 unpreempted {fmt_time(r.get(op, impl, n, 'p99_unpreempted_ns'))} "
                    f"({r.get(op, impl, n, 'preempted_blocks_pct') or 0:.1f}% of blocks preempted)")
            w = r.get(op, impl, n, "writer_events_per_s")
            if w is not None:
                text += f", writer {fmt_rate(w)}"
        elif op == "Memory":
            parts = [f"overhead {fmt_bytes(r.get(op, impl, n, 'bytes_per_workload_overhead'))}/workload",
                     f"heap {fmt_bytes(r.get(op, impl, n, 'heap_bytes_per_workload'))}/workload"]
            ret = r.get(op, impl, n, "bytes_retained_per_change")
            if ret is not None:
                parts.append(f"store accounting overhead "
                             f"{fmt_bytes(r.get(op, impl, n, 'stats_overhead_per_workload'))}/workload "
                             f"(nodes {fmt_bytes(r.get(op, impl, n, 'stats_node_bytes_per_workload'))}, "
                             f"record header {fmt_bytes(r.get(op, impl, n, 'stats_record_header_bytes'))})")
                parts.append(f"retained/change {fmt_bytes(ret)} "
                             f"({fmt_bytes(r.get(op, impl, n, 'bytes_retained_per_change_excl_old_payload'))} "
                             "w/o old payload; first block "
                             f"{fmt_bytes(r.get(op, impl, n, 'bytes_retained_per_change_first_block'))}; "
                             f"store accounting {fmt_bytes(r.get(op, impl, n, 'stats_retained_bytes_per_change'))} "
                             f"+ {fmt_bytes(r.get(op, impl, n, 'stats_snapshot_header_bytes_per_change'))} "
                             "snapshot headers)")
            text = ", ".join(parts)
        else:
            text = fmt_time(r.get(op, impl, n, "time_ns"))
        rows.append((op, impl, label(n), text))
    return rows


def main(argv):
    path = argv[1] if len(argv) > 1 else "build/bench/state.json"
    try:
        context, medians, runs, errors = load(path)
    except (OSError, ValueError) as e:
        print(f"summarize.py: cannot read {path}: {e}", file=sys.stderr)
        return 1
    r = Results(medians, runs, errors)

    print(f"## state_bench goals ({path})\n")
    host = context.get("host_name", "?")
    load_avg = context.get("load_avg")
    load_text = ", ".join(f"{x:.2f}" for x in load_avg) if isinstance(load_avg, list) else "?"
    print(f"Run {context.get('date', '?')} on {host}, {context.get('num_cpus', '?')} CPUs "
          f"(load average at start {load_text}); "
          f"object JSON ~{context.get('object_json_bytes_avg', '?')} B; "
          f"store history {context.get('store_history', '?')}.\n")
    print("| goal | measured | baseline (same run) | ratio | verdict |")
    print("|---|---|---|---|---|")
    for goal, measured, baseline, rat, ok in goal_rows(r):
        print(f"| {goal} | {measured} | {baseline} | {rat} | {ok} |")

    print("\n## Raw figures (medians where repeated)\n")
    print("| op | impl | N | figure |")
    print("|---|---|---|---|")
    for op, impl, n, text in raw_rows(r):
        print(f"| {op} | {impl} | {n} | {text} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

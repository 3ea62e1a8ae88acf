#!/usr/bin/env bash
# svcnet's allocator next to upstream Kubernetes' AllocationBitmap, same workload
# (docs/allocator.md, "Benchmark workload"): runs the Rust criterion benchmark,
# then the Go benchmark of upstream (e2e/hyperkube/allocbench), once each, in this
# one invocation, and prints a markdown table for docs/benchmarks.md.
#
# Usage: bash bench/allocator-vs-upstream.sh     (about 2-3 minutes on 2 cores)
# Env:   CARGO (default cargo), GO (default go on PATH, else /usr/local/go/bin/go),
#        CARGO_TARGET_DIR is honoured; BENCH_OUT keeps the raw outputs in that directory.
# Run it on an otherwise idle machine: other builds or clusters skew both sides.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# Criterion writes its reports under $CARGO_TARGET_DIR as given, relative to the
# package directory the bench runs in, so make a relative one absolute.
if [ -n "${CARGO_TARGET_DIR:-}" ] && [ "${CARGO_TARGET_DIR#/}" = "$CARGO_TARGET_DIR" ]; then
  export CARGO_TARGET_DIR="$root/$CARGO_TARGET_DIR"
fi

cargo=${CARGO:-cargo}
go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"

# Build first so compile time never overlaps the measurements.
echo "== building (rust bench, go test binary)" >&2
"$cargo" bench -p svcnet-allocator --bench allocate --no-run >&2
(cd e2e/hyperkube && "$go" test -c -o "$out/allocbench.test" ./allocbench/ >&2)

echo "== rust: cargo bench -p svcnet-allocator --bench allocate" >&2
# Criterion settings come from the bench's config(): warm-up 1 s, measurement 2 s,
# 30 samples; --noplot skips the HTML plots.
"$cargo" bench -p svcnet-allocator --bench allocate -- --noplot | tee "$out/rust.txt" >&2

echo "== go: go test -run XXX -bench . -benchtime 1s ./allocbench/" >&2
(cd e2e/hyperkube && "$go" test -run XXX -bench . -benchtime 1s ./allocbench/) | tee "$out/go.txt" >&2

cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
rustc_v=$(rustc --version | awk '{ print $2 }')
go_v=$("$go" env GOVERSION)
header="$(date -u +%Y-%m-%d) · nproc $(nproc) · ${cpu:-unknown CPU} · ${mem} RAM · $(uname -sr) · rustc ${rustc_v} · ${go_v}"

python3 - "$out/rust.txt" "$out/go.txt" "$header" <<'PY'
import re
import sys

rust_path, go_path, header = sys.argv[1:4]
UNITS = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}

# criterion: "<id>   time:   [low unit mid unit high unit]", the id either on the
# same line or, when long, alone on the line before.
rust = {}
last_id = None
time_re = re.compile(r"^(.*?)\s*time:\s+\[(\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\]")
for line in open(rust_path, encoding="utf-8"):
    line = line.rstrip("\n")
    m = time_re.match(line)
    if m:
        name = m.group(1).strip() or last_id
        v = [float(m.group(i)) * UNITS[m.group(i + 1)] for i in (2, 4, 6)]
        rust[name] = v  # [low, mid, high] in ns
    elif line and not line[0].isspace() and not line.startswith(
        ("Benchmarking", "Found", "Gnuplot", "Warning", "Running", "change:", "Performance", "No change")
    ):
        last_id = line.strip()

# go test: "BenchmarkX/sub/fill0.5-2   1000000   1234 ns/op   0 B/op   0 allocs/op"
go = {}
go_re = re.compile(r"^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op")
for line in open(go_path, encoding="utf-8"):
    m = go_re.match(line)
    if m:
        go[m.group(1)] = float(m.group(2))

ranges = [("10.96.0.0/16", "slash16", 65534), ("10.96.0.0/12", "slash12", 1048574),
          ("30000-32767", "nodeport", 2768)]
fills = [("0%", "fill0"), ("50%", "fill0.5"), ("99%", "fill0.99"), ("99.9%", "fill0.999")]
rows = []
for rng, gname, size in ranges:
    for label, gfill in fills:
        rows.append((f"allocate-next + release, `{rng}` ({size}) at {label}",
                     [f"allocate_next+release/{rng}/{label}"],
                     f"BenchmarkAllocateNext/{gname}/{gfill}"))
rows.append(("`snapshot()` + `restore()` of `10.96.0.0/12` at 50%",
             ["snapshot/snapshot 10.96.0.0/12 @ 50%", "snapshot/restore 10.96.0.0/12 @ 50%"],
             "BenchmarkSnapshotRestore/slash12/fill0.5"))


def fmt(ns):
    if ns >= 100:
        return f"{ns:,.0f}"
    return f"{ns:.1f}"


missing = []
print(f"Measured {header}")
print()
print("| workload | svcnet (ns) | upstream (ns) | ratio svcnet/upstream |")
print("|----------|------------:|--------------:|----------------------:|")
for title, rids, gid in rows:
    if any(r not in rust for r in rids) or gid not in go:
        missing += [r for r in rids if r not in rust] + ([gid] if gid not in go else [])
        continue
    low, mid, high = (sum(rust[r][i] for r in rids) for i in range(3))
    up = go[gid]
    print(f"| {title} | {fmt(mid)} [{fmt(low)}, {fmt(high)}] | {fmt(up)} | {mid / up:.3g} |")
print()
print("svcnet: criterion median [95% interval]; upstream: go test ns/op (one -benchtime 1s run);"
      " snapshot+restore on the svcnet side is the sum of its two benchmarks.")
if missing:
    print(f"missing results: {', '.join(missing)}", file=sys.stderr)
    sys.exit(1)
PY
echo "raw outputs: $out" >&2

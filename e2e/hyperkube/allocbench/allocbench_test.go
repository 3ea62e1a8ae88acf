// Package allocbench benchmarks upstream Kubernetes' bitmap allocator
// (k8s.io/kubernetes/pkg/registry/core/service/allocator, v1.36.3), which
// backs ClusterIP and NodePort allocation in the kube-apiserver. The
// workloads mirror svcnet's Rust allocator benchmarks so the two can be
// compared:
//
//   - BenchmarkAllocateNext/<range>/fill<F>: prefill the range to fraction F
//     with the very same offsets as the Rust benchmark (SplitMix64 seed
//     20261122 driving a partial Fisher-Yates shuffle of the offsets, see
//     "Benchmark workload" in docs/allocator.md), then each iteration does one
//     AllocateNext() and Release()s the result, so the fill level is
//     unchanged across iterations.
//   - BenchmarkSnapshotRestore/slash12/fill0.5: Snapshot() a /12 at 50% fill
//     and Restore() it into another bitmap for the same range.
//
// Bitmaps are built exactly as upstream's ipallocator / portallocator build
// them: NewAllocationMapWithOffset(size, rangeSpec, staticBandOffset).
//
// TestPrefillMatchesRust pins the prefill to the numbers pinned on the Rust
// side (allocator/tests/bench_workload.rs).
//
// Run: go test -run XXX -bench . -benchtime 1s ./allocbench/
// (or bench/allocator-vs-upstream.sh for the side-by-side table).
package allocbench

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"k8s.io/kubernetes/pkg/registry/core/service/allocator"
)

type rangeCase struct {
	name      string
	rangeSpec string // what upstream stores as the bitmap's range spec
	size      int    // usable items in the bitmap
	offset    int    // static band (lower block AllocateNext avoids until the upper block is full)
}

// ipOffset is upstream ipallocator.calculateRangeOffset:
// min(max(16, cidrSize/16), 256), 0 for cidrSize <= 16.
func ipOffset(cidrSize int) int {
	if cidrSize <= 16 {
		return 0
	}
	return min(max(16, cidrSize/16), 256)
}

// portOffset is upstream portallocator.calculateRangeOffset:
// min(max(16, rangeSize/32), 128), 0 for rangeSize <= 16.
func portOffset(rangeSize int) int {
	if rangeSize <= 16 {
		return 0
	}
	return min(max(16, rangeSize/32), 128)
}

var ranges = []rangeCase{
	// IPv4: the network and broadcast addresses are not in the bitmap.
	{name: "slash16", rangeSpec: "10.96.0.0/16", size: 1<<16 - 2, offset: ipOffset(1 << 16)},
	{name: "slash12", rangeSpec: "10.96.0.0/12", size: 1<<20 - 2, offset: ipOffset(1 << 20)},
	// Default NodePort range 30000-32767.
	{name: "nodeport", rangeSpec: "30000-32767", size: 2768, offset: portOffset(2768)},
}

// fills are the fill fractions in per mille: 0%, 50%, 99%, 99.9%.
var fills = []int{0, 500, 990, 999}

// prefillSeed is the seed of the prefill permutation, as in the Rust
// benchmark (allocator/benches/workload/mod.rs).
const prefillSeed uint64 = 20261122

// splitMix64 is the Rust benchmark's SplitMix64 (all arithmetic wraps
// modulo 2^64, as Go's uint64 does).
type splitMix64 struct{ state uint64 }

func (r *splitMix64) next() uint64 {
	r.state += 0x9E3779B97F4A7C15
	z := r.state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// prefillOffsets returns the offsets to prefill: the first size*permille/1000
// (integer division) entries of a partial Fisher-Yates shuffle of 0..size-1
// driven by SplitMix64 seeded with prefillSeed, exactly as the Rust
// benchmark's prefill_offsets.
func prefillOffsets(size int, permille int) []int {
	count := int(uint64(size) * uint64(permille) / 1000)
	rng := splitMix64{state: prefillSeed}
	perm := make([]int, size)
	for i := range perm {
		perm[i] = i
	}
	for i := 0; i < count; i++ {
		j := i + int(rng.next()%uint64(size-i))
		perm[i], perm[j] = perm[j], perm[i]
	}
	return perm[:count]
}

// prefilled returns a new bitmap for rc with prefillOffsets(rc.size,
// permille) Allocate()d.
func prefilled(tb testing.TB, rc rangeCase, permille int) *allocator.AllocationBitmap {
	tb.Helper()
	a := allocator.NewAllocationMapWithOffset(rc.size, rc.rangeSpec, rc.offset)
	offsets := prefillOffsets(rc.size, permille)
	for _, o := range offsets {
		ok, err := a.Allocate(o)
		if err != nil {
			tb.Fatal(err)
		}
		if !ok {
			tb.Fatalf("%s: offset %d allocated twice", rc.name, o)
		}
	}
	if got := rc.size - a.Free(); got != len(offsets) {
		tb.Fatalf("%s: prefilled %d, want %d", rc.name, got, len(offsets))
	}
	return a
}

func TestPrefillMatchesRust(t *testing.T) {
	// The same constants as allocator/tests/bench_workload.rs.
	rng := splitMix64{state: prefillSeed}
	for i, want := range []uint64{0x08fa96a3b61875f2, 0x1f47be382adb1444, 0xb2b5c6e805a25b18} {
		if got := rng.next(); got != want {
			t.Errorf("SplitMix64 output %d = %#x, want %#x", i, got, want)
		}
	}
	first := map[string][]int{
		"nodeport": {274, 2087, 2648, 2562, 602, 98, 2009, 447},
		"slash16":  {33926, 37225, 36422, 28407, 39676, 45188, 57593, 43050},
		"slash12":  {55060, 991792, 506810, 139419, 505146, 552794, 83025, 634767},
	}
	counts := map[string][]int{
		"nodeport": {0, 1384, 2740, 2765},
		"slash16":  {0, 32767, 64878, 65468},
		"slash12":  {0, 524287, 1038088, 1047525},
	}
	for _, rc := range ranges {
		want := first[rc.name]
		if got := prefillOffsets(rc.size, 999)[:len(want)]; !slices.Equal(got, want) {
			t.Errorf("%s: first offsets %v, want %v", rc.name, got, want)
		}
		for i, f := range fills {
			if got := len(prefillOffsets(rc.size, f)); got != counts[rc.name][i] {
				t.Errorf("%s at %d per mille: %d offsets, want %d", rc.name, f, got, counts[rc.name][i])
			}
		}
	}
}

// The benchmark function runs several times (b.N = 1, 100, ...); the
// allocate+release loop leaves the bitmap exactly as it found it, so the
// (expensive, for a /12 at 99.9%) prefill is done once per case and reused.
var cache = map[string]*allocator.AllocationBitmap{}

func cached(tb testing.TB, rc rangeCase, permille int) *allocator.AllocationBitmap {
	key := fmt.Sprintf("%s/%d", rc.name, permille)
	if a, ok := cache[key]; ok {
		return a
	}
	a := prefilled(tb, rc, permille)
	cache[key] = a
	return a
}

// fillName is "fill0", "fill0.5", "fill0.99", "fill0.999" (the fraction).
func fillName(permille int) string {
	return "fill" + strconv.FormatFloat(float64(permille)/1000, 'g', -1, 64)
}

func BenchmarkAllocateNext(b *testing.B) {
	for _, rc := range ranges {
		for _, f := range fills {
			b.Run(rc.name+"/"+fillName(f), func(b *testing.B) {
				a := cached(b, rc, f)
				free := a.Free()
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					off, ok, err := a.AllocateNext()
					if err != nil || !ok {
						b.Fatalf("AllocateNext: ok=%v err=%v", ok, err)
					}
					if err := a.Release(off); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				if a.Free() != free {
					b.Fatalf("fill drifted: free %d, want %d", a.Free(), free)
				}
			})
		}
	}
}

func BenchmarkSnapshotRestore(b *testing.B) {
	rc := ranges[1] // slash12
	const permille = 500
	b.Run(rc.name+"/"+fillName(permille), func(b *testing.B) {
		src := cached(b, rc, permille)
		dst := allocator.NewAllocationMapWithOffset(rc.size, rc.rangeSpec, rc.offset)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			spec, data := src.Snapshot()
			if err := dst.Restore(spec, data); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if dst.Free() != src.Free() {
			b.Fatalf("restore: free %d, want %d", dst.Free(), src.Free())
		}
	})
}

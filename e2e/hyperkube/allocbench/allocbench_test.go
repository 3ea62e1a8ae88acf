// Package allocbench benchmarks upstream Kubernetes' bitmap allocator
// (k8s.io/kubernetes/pkg/registry/core/service/allocator, v1.36.3), which
// backs ClusterIP and NodePort allocation in the kube-apiserver. The
// workloads mirror svcnet's Rust allocator benchmarks so the two can be
// compared:
//
//   - BenchmarkAllocateNext/<range>/fill<F>: prefill the range to fraction F
//     with a deterministic pseudo-random set of offsets (math/rand, seed 42),
//     then each iteration does one AllocateNext() and Release()s the result,
//     so the fill level is unchanged across iterations.
//   - BenchmarkSnapshotRestore/slash12/fill0.5: Snapshot() a /12 at 50% fill
//     and Restore() it into another bitmap for the same range.
//
// Bitmaps are built exactly as upstream's ipallocator / portallocator build
// them: NewAllocationMapWithOffset(size, rangeSpec, staticBandOffset).
//
// Run: go test -run XXX -bench . -benchtime 2s ./allocbench/
package allocbench

import (
	"fmt"
	"math"
	"math/rand"
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

var fills = []float64{0, 0.5, 0.99, 0.999}

// prefilled returns a new bitmap for rc holding floor(fill*size) allocated
// offsets, chosen by repeatedly drawing rand.Intn(size) from a math/rand
// source seeded with 42 and Allocate()-ing each draw until the count is
// reached.
func prefilled(tb testing.TB, rc rangeCase, fill float64) *allocator.AllocationBitmap {
	tb.Helper()
	a := allocator.NewAllocationMapWithOffset(rc.size, rc.rangeSpec, rc.offset)
	target := int(math.Floor(fill * float64(rc.size)))
	rng := rand.New(rand.NewSource(42))
	for n := 0; n < target; {
		ok, err := a.Allocate(rng.Intn(rc.size))
		if err != nil {
			tb.Fatal(err)
		}
		if ok {
			n++
		}
	}
	if got := rc.size - a.Free(); got != target {
		tb.Fatalf("%s: prefilled %d, want %d", rc.name, got, target)
	}
	return a
}

// The benchmark function runs several times (b.N = 1, 100, ...); the
// allocate+release loop leaves the bitmap exactly as it found it, so the
// (expensive, for a /12 at 99.9%) prefill is done once per case and reused.
var cache = map[string]*allocator.AllocationBitmap{}

func cached(tb testing.TB, rc rangeCase, fill float64) *allocator.AllocationBitmap {
	key := fmt.Sprintf("%s/%g", rc.name, fill)
	if a, ok := cache[key]; ok {
		return a
	}
	a := prefilled(tb, rc, fill)
	cache[key] = a
	return a
}

func fillName(f float64) string { return "fill" + strconv.FormatFloat(f, 'g', -1, 64) }

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
	const fill = 0.5
	b.Run(rc.name+"/"+fillName(fill), func(b *testing.B) {
		src := cached(b, rc, fill)
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

package bench

import "testing"

// BenchmarkMachineParallelism is a pure arithmetic loop run on every P
// (b.RunParallel): no memory, no locks, no I/O. `-cpu 1,2` side by side says how
// much a second core adds on this machine — the ceiling of every "use every core"
// figure in bench/README.md. ns/op(-cpu 1) / ns/op(-cpu 2) is 2 on two free cores.
func BenchmarkMachineParallelism(b *testing.B) {
	var sink uint64
	b.RunParallel(func(pb *testing.PB) {
		x := uint64(1)
		for pb.Next() {
			for range 1000 {
				x = x*6364136223846793005 + 1442695040888963407
				x ^= x >> 17
			}
		}
		if x == 42 {
			sink++
		}
	})
	_ = sink
}

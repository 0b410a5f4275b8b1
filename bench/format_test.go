package bench

import (
	"fmt"
	"testing"
)

// TestFormatsAgree checks that every format's encoding of the workload decodes to the
// same record, so that BenchmarkDecodeAndProfile measures the same work in each.
func TestFormatsAgree(t *testing.T) {
	spec, _ := workloadSpec()
	evs := events(3, 1100)
	var want string
	for _, f := range formats {
		dec, err := f.newDecoder(spec)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		rec, rej := dec.Decode(f.msgs(evs))
		if len(rej) > 0 {
			t.Fatalf("%s: %v", f.name, rej[0].Err)
		}
		got := fmt.Sprint(rec)
		rec.Release()
		dec.Release()
		if want == "" {
			want = got
		} else if got != want {
			t.Errorf("%s decodes to\n%s\nwant (%s)\n%s", f.name, got, formats[0].name, want)
		}
	}
}

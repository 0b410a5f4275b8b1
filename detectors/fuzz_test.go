package detectors

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/driftmon/driftmon/sketch"
)

// framed puts a payload behind a valid profile header (magic, version 1,
// CRC-32C) so the fuzzer explores the decoder and Evaluate, not the
// checksum. It mirrors sketch's encoding layout.
func framed(payload []byte) []byte {
	b := append([]byte("DMPF\x01"), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[5:], crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
	return append(b, payload...)
}

// FuzzEvaluate: any profile that decodes can be evaluated (drift and data
// quality) against itself and a normal one without panics, p-values stay
// in [0, 1] and scores are never NaN. Inputs are
// profile payloads (the encoding without its 9-byte header).
func FuzzEvaluate(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 1))
	mk := func(n int, shift float64) *sketch.Profile {
		return profileOf(f, []column{
			{name: "x", num: normals(r, n, shift, 1)},
			{name: "i", num: ints(r, n, 4)},
			{name: "c", cat: cats(r, n, []float64{3, 1, 1})},
		}, sketch.Options{}, 0)
	}
	ref := mk(2000, 0)
	for _, p := range []*sketch.Profile{mk(500, 1), mk(3, 0), ref} {
		data, err := p.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data[9:])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p sketch.Profile
		if err := p.UnmarshalBinary(framed(data)); err != nil {
			return
		}
		for _, pair := range [][2]*sketch.Profile{{&p, &p}, {ref, &p}, {&p, ref}} {
			for _, fd := range Evaluate(pair[0], pair[1], Options{MinRows: 1}) {
				if !(fd.PValue >= 0 && fd.PValue <= 1) || !(fd.AdjustedP >= 0 && fd.AdjustedP <= 1) {
					t.Fatalf("%s: p-value %v adjusted %v", fd.Feature, fd.PValue, fd.AdjustedP)
				}
				if math.IsNaN(fd.Score) || math.IsNaN(fd.PSI) {
					t.Fatalf("%s: NaN score %v PSI %v", fd.Feature, fd.Score, fd.PSI)
				}
				_ = fd.Summary()
			}
			opts := QualityOptions{MinRows: 1, ExpectedRows: 100, Now: time.Unix(1e9, 0)}
			for _, q := range EvaluateQuality(pair[0], pair[1], opts) {
				if !(q.PValue >= 0 && q.PValue <= 1) || !(q.AdjustedP >= 0 && q.AdjustedP <= 1) {
					t.Fatalf("%s %s: p-value %v adjusted %v", q.Feature, q.Check, q.PValue, q.AdjustedP)
				}
				if math.IsNaN(q.Score) || math.IsNaN(q.Ref) || math.IsNaN(q.Cur) {
					t.Fatalf("%s %s: NaN in %+v", q.Feature, q.Check, q)
				}
				_ = q.Summary()
			}
		}
	})
}

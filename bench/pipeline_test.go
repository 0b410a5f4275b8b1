package bench

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/detectors"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/sketch"
)

const (
	numeric     = 20
	categorical = 5
	batchRows   = 1000
)

// workload is a batch of JSON inference events with 20 numeric and 5 categorical
// features, the shape issue #7 measures, and the matching decoder spec and fields.
func workload(seed uint64) (ingest.Spec, []sketch.Field, []ingest.Message) {
	rng := rand.New(rand.NewPCG(seed, 1))
	spec := ingest.Spec{EventTime: "ts", Model: "model", ModelVersion: "version"}
	var fields []sketch.Field
	for i := 0; i < numeric; i++ {
		name := fmt.Sprintf("n%02d", i)
		spec.Fields = append(spec.Fields, ingest.Field{Name: name, Path: "features." + name, Type: ingest.Number})
		fields = append(fields, sketch.Field{Name: name, Kind: sketch.KindNumeric})
	}
	for i := 0; i < categorical; i++ {
		name := fmt.Sprintf("c%d", i)
		spec.Fields = append(spec.Fields, ingest.Field{Name: name, Path: "features." + name, Type: ingest.String})
		fields = append(fields, sketch.Field{Name: name, Kind: sketch.KindCategorical})
	}
	base := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	msgs := make([]ingest.Message, batchRows)
	for r := range msgs {
		var b strings.Builder
		b.WriteString(`{"ts":"`)
		b.WriteString(base.Add(time.Duration(r) * time.Millisecond).Format(time.RFC3339Nano))
		b.WriteString(`","model":"credit","version":"7","features":{`)
		for i := 0; i < numeric; i++ {
			fmt.Fprintf(&b, `"n%02d":%s,`, i, strconv.FormatFloat(rng.NormFloat64()*100+float64(i), 'g', 8, 64))
		}
		for i := 0; i < categorical; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"c%d":"cat-%d"`, i, rng.IntN(20))
		}
		b.WriteString(`}}`)
		msgs[r] = ingest.Message{Value: []byte(b.String()), Time: base}
	}
	return spec, fields, msgs
}

// BenchmarkDecodeAndProfile is the per-core cost of the monitor's hot path: JSON bytes
// to an Arrow record to updated sketches.
func BenchmarkDecodeAndProfile(b *testing.B) {
	spec, fields, msgs := workload(1)
	dec, err := ingest.NewJSONDecoder(spec, memory.NewGoAllocator())
	if err != nil {
		b.Fatal(err)
	}
	defer dec.Release()
	p := sketch.NewProfile(fields, sketch.Options{})
	size := 0
	for _, m := range msgs {
		size += len(m.Value)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		rec, rej := dec.Decode(msgs)
		if len(rej) > 0 {
			b.Fatal(rej[0].Err)
		}
		p.Update(rec, nil)
		rec.Release()
		n += batchRows
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkEvaluateWindow is the cost of closing one window of the workload: comparing
// a 25-feature profile of 10,000 rows with its reference.
func BenchmarkEvaluateWindow(b *testing.B) {
	spec, fields, _ := workload(1)
	profile := func(seed uint64) *sketch.Profile {
		dec, err := ingest.NewJSONDecoder(spec, memory.NewGoAllocator())
		if err != nil {
			b.Fatal(err)
		}
		defer dec.Release()
		p := sketch.NewProfile(fields, sketch.Options{})
		for i := uint64(0); i < 10; i++ {
			_, _, msgs := workload(seed*100 + i)
			rec, _ := dec.Decode(msgs)
			p.Update(rec, nil)
			rec.Release()
		}
		return p
	}
	ref, cur := profile(1), profile(2)
	b.ReportAllocs()
	for b.Loop() {
		detectors.Evaluate(ref, cur, detectors.Options{})
	}
}

package bench

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
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

// event is one inference event of the issue #7 workload: 20 numeric and 5 categorical
// features. Each message format encodes the same events.
type event struct {
	ts   time.Time
	nums [numeric]float64
	cats [categorical]string
}

// events returns n events of the workload, seeded.
func events(seed uint64, n int) []event {
	rng := rand.New(rand.NewPCG(seed, 1))
	base := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	evs := make([]event, n)
	for r := range evs {
		e := &evs[r]
		e.ts = base.Add(time.Duration(r) * time.Millisecond)
		for i := range e.nums {
			// 8 significant digits, as a producer logging float features would.
			e.nums[i], _ = strconv.ParseFloat(strconv.FormatFloat(rng.NormFloat64()*100+float64(i), 'g', 8, 64), 64)
		}
		for i := range e.cats {
			e.cats[i] = "cat-" + strconv.Itoa(rng.IntN(20))
		}
	}
	return evs
}

// workloadSpec is the decoder spec and the profile fields of the workload.
func workloadSpec() (ingest.Spec, []sketch.Field) {
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
	return spec, fields
}

// jsonEvent appends e as the JSON inference event driftmon documents.
func jsonEvent(b []byte, e *event) []byte {
	b = append(b, `{"ts":"`...)
	b = e.ts.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","model":"credit","version":"7","features":{`...)
	for i, v := range e.nums {
		b = fmt.Appendf(b, `"n%02d":`, i)
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
		b = append(b, ',')
	}
	for i, c := range e.cats {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `"c%d":%q`, i, c)
	}
	return append(b, `}}`...)
}

// workload is a batch of JSON inference events with the matching decoder spec and
// profile fields.
func workload(seed uint64) (ingest.Spec, []sketch.Field, []ingest.Message) {
	spec, fields := workloadSpec()
	evs := events(seed, batchRows)
	msgs := make([]ingest.Message, len(evs))
	for r := range evs {
		msgs[r] = ingest.Message{Value: jsonEvent(nil, &evs[r]), Time: evs[0].ts}
	}
	return spec, fields, msgs
}

// decoder is what the formats' decoders have in common.
type decoder interface {
	Decode([]ingest.Message) (arrow.Record, []ingest.Rejected)
	Release()
}

// format is one message encoding of the workload: its messages and a new decoder.
type format struct {
	name string
	// msgs encodes evs; newDecoder returns a decoder for them.
	msgs       func(evs []event) []ingest.Message
	newDecoder func(spec ingest.Spec) (decoder, error)
}

// formats are the message formats driftmon decodes; Avro and Arrow IPC are in
// avro_test.go and arrowipc_test.go.
var formats = append([]format{
	{
		name: "json",
		msgs: func(evs []event) []ingest.Message {
			msgs := make([]ingest.Message, len(evs))
			for r := range evs {
				msgs[r] = ingest.Message{Value: jsonEvent(nil, &evs[r]), Time: evs[0].ts}
			}
			return msgs
		},
		newDecoder: func(spec ingest.Spec) (decoder, error) {
			return ingest.NewJSONDecoder(spec, memory.NewGoAllocator())
		},
	},
	avroFormat,
}, arrowIPCFormats...)

// BenchmarkDecodeAndProfile is the per-core cost of the monitor's hot path for each
// message format: message bytes to an Arrow record to updated sketches of 20 numeric
// and 5 categorical features, 1,000 events per Decode call (the monitor's batch).
// rows/s is per core when run with -cpu 1.
func BenchmarkDecodeAndProfile(b *testing.B) {
	spec, fields := workloadSpec()
	evs := events(1, batchRows)
	for _, f := range formats {
		b.Run(f.name, func(b *testing.B) {
			dec, err := f.newDecoder(spec)
			if err != nil {
				b.Fatal(err)
			}
			defer dec.Release()
			msgs := f.msgs(evs)
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
			b.ReportMetric(float64(size)/batchRows, "B/event")
		})
	}
}

// BenchmarkEvaluateWindow is the cost of closing one window of the workload: comparing
// a 25-feature profile of 10,000 rows with its reference.
func BenchmarkEvaluateWindow(b *testing.B) {
	spec, fields := workloadSpec()
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

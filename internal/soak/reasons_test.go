package soak

import (
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/driftmon/driftmon/ingest"
)

// TestEachBadMessageHasItsReason decodes every fixed corpus message, and 200 of each
// generated kind, alone with the product's JSON decoder and the campaign's stream spec:
// each must be rejected with the reason the campaign expects. The reasons the engine
// gives (an event time out of the stream's limits, a model past max_models) are of
// rows the decoder accepts: TestCorpusIsRejected checks those through the monitor.
func TestEachBadMessageHasItsReason(t *testing.T) {
	spec := ingest.Spec{EventTime: "ts", Model: "model", ModelVersion: "model_version", MaxMessageBytes: maxMessageBytes,
		Fields: []ingest.Field{{Name: "x", Path: "features.x", Type: ingest.Number}, {Name: "age", Path: "features.age", Type: ingest.Number},
			{Name: "segment", Path: "features.segment", Type: ingest.String}, {Name: "channel", Path: "features.channel", Type: ingest.String},
			{Name: "score", Path: "prediction.score", Type: ingest.Number}}}
	dec, err := ingest.NewJSONDecoder(spec, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	try := func(kind, want string, v []byte) {
		rec, rej := dec.Decode([]ingest.Message{{Value: v}})
		got := "accepted"
		if len(rej) > 0 {
			got = string(rej[0].Reason) + ": " + rej[0].Err.Error()
		}
		rec.Release()
		if engineReasons[want] {
			want = "accepted"
		}
		if got != want && (len(rej) == 0 || string(rej[0].Reason) != want) {
			s := string(v)
			if len(s) > 150 {
				s = s[:150]
			}
			t.Errorf("%s: want %s, got %s: %q", kind, want, got, s)
		}
	}
	for _, m := range seedCorpus() {
		try(m.kind, m.reason, m.value)
	}
	for _, g := range generated {
		for i := 0; i < 200; i++ {
			r := rand.New(rand.NewPCG(uint64(i), 9))
			try(g.kind, g.reason, g.make(r, goodEvent(1, int64(i))))
		}
	}
}

// engineReasons are the reasons the engine gives to rows the decoder accepted.
var engineReasons = map[string]bool{"event_time_future": true, "event_time_past": true, "too_many_models": true}

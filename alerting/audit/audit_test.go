package audit

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/internal/state"
)

func TestAppendListPrune(t *testing.T) {
	s, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	a := alerting.Alert{ID: "ep_1", Stream: "loans", Model: "car-loan", ModelVersion: "v3", Reference: "baseline", WindowStart: t0, WindowEnd: t0.Add(time.Hour)}
	err = s.Update(func(tx *state.Tx) error {
		for i, e := range []Entry{
			{Time: t0, Event: EventDecision, Subject: Of(a, Hash([]byte("streams: []"))), Decision: "fire", Features: []string{"car_value"}},
			{Time: t0.Add(time.Minute), Event: EventAttempt, Subject: Of(a, "x"), Delivery: "msg_1", Route: "slack", Attempt: 1, Outcome: "retry", Error: "503"},
			{Time: t0.Add(2 * time.Hour), Event: EventAttempt, Subject: Subject{Alert: "ep_2", Model: "other"}, Delivery: "msg_2", Route: "slack", Attempt: 1, Outcome: "delivered"},
		} {
			if err := Append(tx, e); err != nil {
				t.Fatalf("entry %d: %v", i, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	all, err := List(s, Query{})
	if err != nil || len(all) != 3 {
		t.Fatalf("List = %d entries, %v", len(all), err)
	}
	if e := all[0]; e.Seq != 1 || e.ModelVersion != "v3" || e.Reference != "baseline" || !e.WindowStart.Equal(t0) || len(e.ConfigHash) != 16 || e.Decision != "fire" {
		t.Errorf("first entry %+v", e)
	}
	for name, tt := range map[string]struct {
		q    Query
		want int
	}{
		"alert": {Query{Alert: "ep_1"}, 2}, "delivery": {Query{Delivery: "msg_2"}, 1}, "model": {Query{Model: "car-loan"}, 2},
		"after": {Query{After: 2}, 1}, "limit": {Query{Limit: 1}, 1},
	} {
		if got, err := List(s, tt.q); err != nil || len(got) != tt.want {
			t.Errorf("%s: %d entries, %v; want %d", name, len(got), err, tt.want)
		}
	}
	n, err := Prune(s, t0.Add(time.Hour), 0)
	if err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want 2", n, err)
	}
	if left, _ := List(s, Query{}); len(left) != 1 || left[0].Delivery != "msg_2" || left[0].Seq != 3 {
		t.Errorf("after Prune: %+v", left)
	}
}

package alerting

import (
	"encoding/json"
	"math"
	"testing"
)

func TestNumberJSON(t *testing.T) {
	for _, tt := range []struct {
		v    float64
		want string
	}{
		{math.NaN(), "null"}, {math.Inf(1), "null"}, {math.Inf(-1), "null"},
		{0, "0"}, {0.43, "0.43"}, {-2.5e-7, "-2.5e-7"}, {1e21, "1e+21"},
	} {
		b, err := json.Marshal(struct{ N Number }{Number(tt.v)})
		if err != nil {
			t.Fatalf("Marshal(%v): %v", tt.v, err)
		}
		if want := `{"N":` + tt.want + `}`; string(b) != want {
			t.Errorf("Marshal(%v) = %s, want %s", tt.v, b, want)
		}
		var back struct{ N Number }
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if got := float64(back.N); got != tt.v && !(math.IsNaN(got) && (math.IsNaN(tt.v) || math.IsInf(tt.v, 0))) {
			t.Errorf("round trip of %v = %v", tt.v, got)
		}
	}
	var n Number
	if err := json.Unmarshal([]byte(`"1"`), &n); err == nil {
		t.Error(`Unmarshal("1") succeeded, want an error`)
	}
	if Finite(math.NaN()) != nil || Finite(math.Inf(1)) != nil || *Finite(0.5) != 0.5 {
		t.Error("Finite must be nil for NaN and ±Inf and point at other values")
	}
}

package alerting

import (
	"encoding/json"
	"math"
)

// Finite returns a pointer to v, or nil when v is NaN or ±Inf: JSON has no such
// numbers, and a nil *float64 encodes as null. Payloads that keep *float64 fields
// (webhook bodies, stored policy state, backtest lines) use it.
func Finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// Number is a float64 that encodes NaN and ±Inf as JSON null (encoding/json refuses
// them) and decodes null as NaN, so a statistic without a value (a PSI's p-value, a
// metric of an empty window) survives a round trip. Other values encode as
// encoding/json encodes a float64.
type Number float64

// MarshalJSON encodes n, null when it is NaN or ±Inf.
func (n Number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}

// UnmarshalJSON decodes a number, or null as NaN.
func (n *Number) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Number(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = Number(f)
	return nil
}

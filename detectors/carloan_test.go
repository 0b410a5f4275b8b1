package detectors

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/sketch"
)

// carLoanDir is where the lead puts the NannyML synthetic car loan data.
const carLoanDir = "../testdata/nannyml_car_loan"

// carLoanFields are the monitored columns: how the profile reads them and
// the Arrow type the test builds for them (exercising the Int64 and Bool
// paths as well as Float64 and String).
var carLoanFields = []struct {
	name  string
	kind  sketch.Kind
	arrow arrow.DataType
}{
	{"car_value", sketch.KindNumeric, arrow.PrimitiveTypes.Float64},
	{"salary_range", sketch.KindCategorical, arrow.BinaryTypes.String},
	{"debt_to_income_ratio", sketch.KindNumeric, arrow.PrimitiveTypes.Float64},
	{"loan_length", sketch.KindNumeric, arrow.PrimitiveTypes.Int64},
	{"repaid_loan_on_prev_car", sketch.KindCategorical, arrow.FixedWidthTypes.Boolean},
	{"size_of_downpayment", sketch.KindNumeric, arrow.PrimitiveTypes.Float64}, // "10%" → 0.1
	{"driver_tenure", sketch.KindNumeric, arrow.PrimitiveTypes.Float64},
	{"y_pred_proba", sketch.KindNumeric, arrow.PrimitiveTypes.Float64},
	{"y_pred", sketch.KindNumeric, arrow.PrimitiveTypes.Int64},
}

// readCarLoan reads one CSV file into Arrow records of batch rows.
func readCarLoan(t *testing.T, name string, batch int) []arrow.Record {
	t.Helper()
	f, err := os.Open(filepath.Join(carLoanDir, name))
	if os.IsNotExist(err) {
		t.Skipf("%s not present", filepath.Join(carLoanDir, name))
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header := map[string]int{}
	for i, h := range rows[0] {
		header[h] = i
	}
	afields := make([]arrow.Field, len(carLoanFields))
	for i, c := range carLoanFields {
		if _, ok := header[c.name]; !ok {
			t.Fatalf("%s: no column %s", name, c.name)
		}
		afields[i] = arrow.Field{Name: c.name, Type: c.arrow, Nullable: true}
	}
	schema := arrow.NewSchema(afields, nil)
	var recs []arrow.Record
	data := rows[1:]
	for lo := 0; lo < len(data); lo += batch {
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		for _, row := range data[lo:min(len(data), lo+batch)] {
			for i, c := range carLoanFields {
				s := row[header[c.name]]
				switch fb := b.Field(i).(type) {
				case *array.StringBuilder:
					fb.Append(s)
				case *array.BooleanBuilder:
					fb.Append(strings.EqualFold(s, "true"))
				case *array.Int64Builder:
					v, err := strconv.ParseInt(s, 10, 64)
					if err != nil {
						t.Fatalf("%s %s: %v", name, c.name, err)
					}
					fb.Append(v)
				case *array.Float64Builder:
					scale := 1.0
					if strings.HasSuffix(s, "%") {
						s, scale = strings.TrimSuffix(s, "%"), 0.01
					}
					v, err := strconv.ParseFloat(s, 64)
					if err != nil {
						t.Fatalf("%s %s: %v", name, c.name, err)
					}
					fb.Append(v * scale)
				}
			}
		}
		recs = append(recs, b.NewRecord())
		b.Release()
	}
	t.Cleanup(func() {
		for _, r := range recs {
			r.Release()
		}
	})
	return recs
}

func carLoanProfile() *sketch.Profile {
	fields := make([]sketch.Field, len(carLoanFields))
	for i, c := range carLoanFields {
		fields[i] = sketch.Field{Name: c.name, Kind: c.kind}
	}
	return sketch.NewProfile(fields, sketch.Options{})
}

// TestCarLoan runs 5,000-row monitoring windows against the whole
// reference with default options: the windows after the shift at row
// 25,000 flag exactly the features that moved, the ones before flag nothing.
func TestCarLoan(t *testing.T) {
	const window = 5000
	ref := carLoanProfile()
	for _, rec := range readCarLoan(t, "reference.csv", window) {
		ref.Update(rec, nil)
	}
	// The shift moves marginals, not how the features move together: the
	// multivariate finding stays stable throughout.
	drifted := map[string]bool{
		"car_value": true, "salary_range": true, "loan_length": true,
		"repaid_loan_on_prev_car": true, "y_pred_proba": true,
	}
	stableMax := map[string]Finding{} // highest score of a feature that should stay stable
	driftMin := map[string]Finding{}  // lowest score of a feature that should drift
	for w, rec := range readCarLoan(t, "monitoring.csv", window) {
		cur := carLoanProfile()
		cur.Update(rec, nil)
		after := w*window >= 25000
		var flagged []string
		for _, f := range Evaluate(ref, cur, Options{}) {
			want := Stable
			if after && drifted[f.Feature] {
				want = Drift
			}
			if want == Stable && f.Score >= stableMax[f.Feature].Score {
				stableMax[f.Feature] = f
			}
			if want == Drift && (driftMin[f.Feature].Feature == "" || f.Score < driftMin[f.Feature].Score) {
				driftMin[f.Feature] = f
			}
			if f.Verdict == Drift {
				flagged = append(flagged, f.Feature+" ("+f.Summary()+")")
			}
			if f.Verdict != want {
				t.Errorf("window %d %s: %s (score %.3f, adj p %.2g, PSI %.3f; %s), want %s",
					w, f.Feature, f.Verdict, f.Score, f.AdjustedP, f.PSI, f.Rule, want)
			}
		}
		t.Logf("window %d: %s", w, strings.Join(flagged, "; "))
	}
	for _, c := range carLoanFields {
		if f, ok := stableMax[c.name]; ok {
			t.Logf("stable %s: max %s %.3f (adj p %.2g, PSI %.3f)", c.name, f.Detector, f.Score, f.AdjustedP, f.PSI)
		}
		if f, ok := driftMin[c.name]; ok {
			t.Logf("drift %s: min %s %.3f (adj p %.2g, PSI %.3f)", c.name, f.Detector, f.Score, f.AdjustedP, f.PSI)
		}
	}
}

package engine

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/ingest"
)

// The measured streams of issue 22 (bench/README.md, "Trailing and seasonal
// references"): hourly windows of a generated inference log with a numeric amount
// (log-normal), a small integer items (0..5), a categorical channel and a numeric age
// without rhythm. Two populations, "day" and "night" users, differ in amount, items
// and channel; their mix, and the traffic, follow the hour of the day.

// rhythmStart is the first window of every generated stream, a Monday at 00:00 UTC.
var rhythmStart = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// traffic describes a generated stream.
type traffic struct {
	seed uint64
	// hours is how many hourly windows to generate.
	hours int
	// daily is the amplitude of the daily rhythm in the day users' share (0.5 ± daily)
	// and, scaled, in the rows per hour; 0 is a stream without rhythm.
	daily float64
	// shift multiplies every amount from hour shiftAt on (1: none).
	shift   float64
	shiftAt int
	// ramp multiplies the amount of hour h by exp(ramp·h): a slow drift.
	ramp float64
	// quietAt is an hour with 40% of its usual rows (0: none).
	quietAt int
}

// rows is how many rows hour h holds.
func (tr traffic) rows(h int) int {
	n := int(2400 + 1600*tr.daily*math.Sin(2*math.Pi*float64(h%24-8)/24))
	if tr.quietAt > 0 && h == tr.quietAt {
		n = n * 4 / 10
	}
	return n
}

// window is hour h's rows as a decoder makes them.
func (tr traffic) window(h int, r *rand.Rand) arrow.Record {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "age", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "channel", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "items", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: ingest.ColEventTime, Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	dayShare := 0.5 + tr.daily*math.Sin(2*math.Pi*float64(h%24-8)/24)
	factor := math.Exp(tr.ramp * float64(h))
	if tr.shiftAt > 0 && h >= tr.shiftAt {
		factor *= tr.shift
	}
	n := tr.rows(h)
	start := rhythmStart.Add(time.Duration(h) * time.Hour)
	step := time.Hour / time.Duration(n)
	for i := range n {
		day := r.Float64() < dayShare
		amount, items := math.Exp(3.5+0.6*r.NormFloat64()), float64(r.IntN(3))
		channel := pick(r, []string{"web", "app", "phone"}, []float64{0.6, 0.3, 0.1})
		if day {
			amount, items = math.Exp(4.0+0.5*r.NormFloat64()), float64(1+r.IntN(5))
			channel = pick(r, []string{"app", "web", "store"}, []float64{0.5, 0.35, 0.15})
		}
		b.Field(0).(*array.Float64Builder).Append(40 + 10*r.NormFloat64())
		b.Field(1).(*array.Float64Builder).Append(amount * factor)
		b.Field(2).(*array.StringBuilder).Append(channel)
		b.Field(3).(*array.Float64Builder).Append(items)
		b.Field(4).(*array.Int64Builder).Append(start.Add(time.Duration(i) * step).UnixNano())
	}
	return b.NewRecord()
}

func pick(r *rand.Rand, values []string, shares []float64) string {
	u := r.Float64()
	for i, s := range shares {
		if u < s {
			return values[i]
		}
		u -= s
	}
	return values[len(values)-1]
}

// rhythmStream is the stream of the generated traffic with the given reference.
func rhythmStream(t testing.TB, reference string) *config.Stream {
	t.Helper()
	cfg, err := config.Parse([]byte(`
kafka: {brokers: ["127.0.0.1:1"]}
streams:
  - name: shop
    topic: events
    event_time: ts
    features: {amount: {type: numeric}, items: {type: numeric}, channel: {type: categorical}, age: {type: numeric}}
    window: {size: 1h}
    reference: `+reference+`
`), config.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &cfg.Streams[0]
}

// generated is the records of the last traffic generated: tests run the same traffic
// with several references, and under the race detector generating it takes a third of
// a run.
var generated struct {
	tr   traffic
	recs []arrow.Record
}

// records is the traffic's hourly records, generated once for consecutive calls.
func (tr traffic) records() []arrow.Record {
	if generated.recs != nil && generated.tr == tr {
		return generated.recs
	}
	for _, rec := range generated.recs {
		rec.Release()
	}
	r := rand.New(rand.NewPCG(tr.seed, 22))
	generated.tr, generated.recs = tr, make([]arrow.Record, tr.hours)
	for h := range tr.hours {
		generated.recs[h] = tr.window(h, r)
	}
	return generated.recs
}

// run feeds the generated traffic to an engine, window by window, and returns every
// window's result. each, when set, is called after every window's record with the
// engine, which it may replace (a restart).
func (tr traffic) run(t testing.TB, sc *config.Stream, each func(h int, e *Engine) *Engine) []Result {
	t.Helper()
	e, err := New(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	var results []Result
	for h, rec := range tr.records() {
		results = append(results, e.Process(rec)...)
		if each != nil {
			e = each(h, e)
		}
	}
	return append(results, e.Flush()...)
}

// tally is what a run's judged windows showed.
type tally struct {
	judged, drifting, violating int
	// drifted counts the windows in which each feature drifted.
	drifted map[string]int
}

func count(results []Result, from, to time.Time) tally {
	c := tally{drifted: map[string]int{}}
	for _, r := range results {
		if r.Warmup || r.Start.Before(from) || !r.Start.Before(to) {
			continue
		}
		c.judged++
		if d := r.Drifted(); len(d) > 0 {
			c.drifting++
			for _, f := range d {
				c.drifted[f]++
			}
		}
		if len(r.Violations()) > 0 {
			c.violating++
		}
	}
	return c
}

func hour(h int) time.Time { return rhythmStart.Add(time.Duration(h) * time.Hour) }

func resultAt(t *testing.T, results []Result, h int) Result {
	t.Helper()
	for _, r := range results {
		if r.Start.Equal(hour(h)) {
			return r
		}
	}
	t.Fatalf("no result for hour %d", h)
	return Result{}
}

// TestSeasonalNullStream: 14 days of hourly windows with a daily rhythm and no drift.
// A warm-up reference (the model's first whole window, at 01:00) takes the rhythm for
// drift nearly every day; a seasonal reference (same hour, last 7 days) never does.
func TestSeasonalNullStream(t *testing.T) {
	tr := traffic{seed: 1, hours: 14 * 24, daily: 0.35}
	end := hour(tr.hours)

	warm := count(tr.run(t, rhythmStream(t, "{warmup_windows: 1}"), nil), rhythmStart, end)
	results := tr.run(t, rhythmStream(t, "{seasonal: {period: 24h, cycles: 7}}"), nil)
	seasonal := count(results, rhythmStart, end)
	withFallback := tr.run(t, rhythmStream(t, "{seasonal: {period: 24h, cycles: 7, fallback_windows: 3}}"), nil)
	fallback, firstDay := count(withFallback, rhythmStart, end), count(withFallback, rhythmStart, hour(24))

	t.Logf("| reference | windows judged | windows with drift | with a data-quality violation | drifted, by feature |")
	t.Logf("|---|---:|---:|---:|---|")
	for _, row := range []struct {
		name string
		c    tally
	}{
		{"warm-up (first whole window)", warm},
		{"seasonal 24h × 7", seasonal},
		{"seasonal 24h × 7, fallback_windows 3", fallback},
		{"… of which day 1 (fallback)", firstDay},
	} {
		t.Logf("| %s | %d | %d | %d | %v |", row.name, row.c.judged, row.c.drifting, row.c.violating, row.c.drifted)
	}

	if seasonal.drifting != 0 || seasonal.violating != 0 {
		t.Errorf("seasonal reference: %d windows with drift, %d with a violation, want none", seasonal.drifting, seasonal.violating)
	}
	// Every window from day 2 on but 00:00 on day 2: the first window, at 00:00 on
	// day 1, is not kept (traffic may have started within it).
	if seasonal.judged != 13*24-1 {
		t.Errorf("seasonal reference judged %d windows, want every window from day 2 on but one (%d)", seasonal.judged, 13*24-1)
	}
	// Windows judged against the fallback are kept whatever their verdict, so from
	// day 2 on only 00:00, whose first window was not kept, has none of its own.
	if after := fallback.drifting - firstDay.drifting; after > 1 {
		t.Errorf("with fallback_windows, %d windows after day 1 drift", after)
	}
	if warm.drifting < warm.judged/2 {
		t.Errorf("warm-up reference: %d of %d windows drift; the stream's rhythm should show", warm.drifting, warm.judged)
	}
	// What the references say.
	for h, want := range map[int]string{
		0:         "first window: traffic may have started within it",
		5:         "seasonal: no earlier window at the same hour of day yet",
		29:        "same hour of day, last 1 day (of 7): ",
		24*9 + 14: "same hour of day, last 7 days: ",
	} {
		if got := resultAt(t, results, h).Reference; !strings.HasPrefix(got, want) {
			t.Errorf("hour %d: reference %q, want %q…", h, got, want)
		}
	}
}

// TestSeasonalCatchesShift: the same stream with amounts 30% higher from day 10,
// 13:00 on is caught in that first window by the seasonal reference, which stays on
// the days before the shift (skip_drifting) so that every later window drifts too.
func TestSeasonalCatchesShift(t *testing.T) {
	at := 9*24 + 13
	tr := traffic{seed: 1, hours: 14 * 24, daily: 0.35, shift: 1.3, shiftAt: at}
	results := tr.run(t, rhythmStream(t, "{seasonal: {period: 24h, cycles: 7}}"), nil)
	before, after := count(results, rhythmStart, hour(at)), count(results, hour(at), hour(tr.hours))
	first := resultAt(t, results, at)
	t.Logf("before the shift: %d of %d judged windows drift; after: %d of %d (amount in %d); first shifted window: %v against %q",
		before.drifting, before.judged, after.drifting, after.judged, after.drifted["amount"], first.Drifted(), first.Reference)
	if before.drifting != 0 {
		t.Errorf("%d windows before the shift drift", before.drifting)
	}
	if d := first.Drifted(); len(d) == 0 || d[0] != "amount" {
		t.Errorf("first shifted window: drifted %v, want amount", d)
	}
	if after.drifted["amount"] != after.judged {
		t.Errorf("amount drifts in %d of the %d windows after the shift, want all: the shift must not be absorbed", after.drifted["amount"], after.judged)
	}
}

// TestTrailingCatchesAbruptShift: on a stream without rhythm, a trailing reference
// (last 12 windows) catches amounts 30% higher in the shift's first window, and with
// skip_drifting goes on flagging them; without it the shift is absorbed into the
// reference within a few windows.
func TestTrailingCatchesAbruptShift(t *testing.T) {
	at := 72
	tr := traffic{seed: 2, hours: 120, shift: 1.3, shiftAt: at}
	results := tr.run(t, rhythmStream(t, "{trailing: {windows: 12}}"), nil)
	absorbing := tr.run(t, rhythmStream(t, "{trailing: {windows: 12, skip_drifting: false}}"), nil)
	before, after := count(results, rhythmStart, hour(at)), count(results, hour(at), hour(tr.hours))
	absorbed := count(absorbing, hour(at), hour(tr.hours))
	first := resultAt(t, results, at)
	t.Logf("before the shift: %d of %d judged windows drift; after: %d of %d with skip_drifting, %d of %d without; first shifted window: %v against %q",
		before.drifting, before.judged, after.drifting, after.judged, absorbed.drifting, absorbed.judged, first.Drifted(), first.Reference)
	if before.drifting != 0 {
		t.Errorf("%d windows before the shift drift", before.drifting)
	}
	if d := first.Drifted(); len(d) == 0 || d[0] != "amount" {
		t.Errorf("first shifted window: drifted %v, want amount", d)
	}
	if after.drifting != after.judged {
		t.Errorf("with skip_drifting, %d of %d windows after the shift drift, want all", after.drifting, after.judged)
	}
	if absorbed.drifting >= after.judged/2 {
		t.Errorf("without skip_drifting, %d of %d windows after the shift drift: the shift should be absorbed", absorbed.drifting, absorbed.judged)
	}
	if got := resultAt(t, results, at+5).Reference; got != "last 12 windows (5 drifting left out): 28,800 rows" {
		t.Errorf("reference 5 windows into the shift: %q", got)
	}
	for h, want := range map[int]string{1: "trailing: building the reference, 0 of 12 windows in", 2: "last window: 2,400 rows", 5: "last 4 of 12 windows: 9,600 rows"} {
		if got := resultAt(t, results, h).Reference; got != want {
			t.Errorf("hour %d: reference %q, want %q", h, got, want)
		}
	}
}

// TestTrailingMissesSlowDrift measures what a trailing reference cannot see: amounts
// that grow 0.5% an hour (+61% over four days) move each window too little from the
// last 12 to be flagged, while a fixed reference (the first 12 windows) flags them
// once the change has added up.
func TestTrailingMissesSlowDrift(t *testing.T) {
	tr := traffic{seed: 3, hours: 100, ramp: 0.005}
	trailing := count(tr.run(t, rhythmStream(t, "{trailing: {windows: 12}}"), nil), hour(13), hour(tr.hours))
	fixed := count(tr.run(t, rhythmStream(t, "{warmup_windows: 12}"), nil), hour(13), hour(tr.hours))
	t.Logf("windows 13–99 with drift: trailing (last 12) %d of %d, fixed (first 12 windows) %d of %d",
		trailing.drifting, trailing.judged, fixed.drifting, fixed.judged)
	if fixed.drifting <= trailing.drifting+fixed.judged/2 {
		t.Errorf("fixed reference flags %d windows, trailing %d: want the fixed one to see the slow drift", fixed.drifting, trailing.drifting)
	}
}

// TestSeasonalVolume: a seasonal reference expects the rows of its own hour on other
// days, so an afternoon with 40% of its traffic is a volume violation, and no other
// hour is.
func TestSeasonalVolume(t *testing.T) {
	at := 3*24 + 16
	tr := traffic{seed: 8, hours: 4 * 24, daily: 0.35, quietAt: at}
	results := tr.run(t, rhythmStream(t, "{seasonal: {period: 24h, cycles: 7}}"), nil)
	var violations []string
	for _, r := range results {
		for _, v := range r.Violations() {
			violations = append(violations, r.Start.Format("Jan 2 15:04")+": "+v)
		}
	}
	if len(violations) != 1 || !strings.HasPrefix(violations[0], "Nov 5 16:00: ") || !strings.Contains(violations[0], "rows, expected 2.88k") {
		t.Errorf("violations %q, want only the volume of Nov 5 16:00", violations)
	}
}

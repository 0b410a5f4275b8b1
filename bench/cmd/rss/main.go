// Command rss measures driftmon's memory as events go by: one stream of many features
// (1,000 by default, 80% numeric) runs through the window engine (internal/engine)
// in-process — no Kafka, no decoding — on Arrow records built once and reused, and the
// process's resident set (VmRSS from /proc/self/status) and Go heap are printed at
// checkpoints as a markdown table. What it shows: memory depends on the number of
// features and open windows, not on how many events went by.
//
//	go run ./bench/cmd/rss -events 10000000 -every 1000000
//
// Like bench, it measures from outside; nothing imports it.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/internal/engine"
)

func main() { os.Exit(run()) }

func run() int {
	var (
		features    = flag.Int("features", 1000, "number of features")
		numericPct  = flag.Int("numeric", 80, "percentage of the features that are numeric; the rest are categorical")
		events      = flag.Int64("events", 1_000_000, "events to process")
		every       = flag.Int64("every", 1_000_000, "print a checkpoint every this many events")
		windowRows  = flag.Int("window", 100_000, "rows per count window")
		batch       = flag.Int("batch", 1000, "rows per record, as the monitor gets them from Kafka")
		records     = flag.Int("records", 8, "distinct records to cycle through")
		categories  = flag.Int("categories", 20, "categories per categorical feature")
		warmWindows = flag.Int("warmup", 1, "windows that become the reference")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	nNum := *features * *numericPct / 100
	cfg, err := streamConfig(*features, nNum, *windowRows, *warmWindows)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rss:", err)
		return 2
	}
	engine, err := engine.New(cfg, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rss:", err)
		return 1
	}

	start := time.Now()
	recs := buildRecords(*features, nNum, *batch, *records, *categories)
	fmt.Printf("%d features (%d numeric, %d categorical), windows of %d rows, %d-row records (%d distinct, built in %s)\n\n",
		*features, nNum, *features-nNum, *windowRows, *batch, len(recs), time.Since(start).Round(time.Millisecond))
	fmt.Println("| events | wall time | events/s | windows closed | VmRSS MiB | VmHWM MiB | Go heap in use MiB | Go sys MiB |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|")
	checkpoint(0, 0, 0)

	start = time.Now()
	var done, windows int64
	next := *every
	for done < *events {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "rss: interrupted")
			return 1
		}
		rec := recs[(done/int64(*batch))%int64(len(recs))]
		windows += int64(len(engine.Process(rec)))
		done += rec.NumRows()
		if done >= next {
			checkpoint(done, time.Since(start), windows)
			next += *every
		}
	}
	for _, r := range recs {
		r.Release()
	}
	return 0
}

// checkpoint prints one row of the table.
func checkpoint(events int64, elapsed time.Duration, windows int64) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	rate := "—"
	if elapsed > 0 {
		rate = strconv.FormatFloat(float64(events)/elapsed.Seconds(), 'f', 0, 64)
	}
	fmt.Printf("| %d | %s | %s | %d | %.1f | %.1f | %.1f | %.1f |\n",
		events, elapsed.Round(100*time.Millisecond), rate, windows,
		mib(status("VmRSS")), mib(status("VmHWM")), mib(int64(m.HeapInuse)), mib(int64(m.Sys)))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// status returns a /proc/self/status memory line (in kB there) in bytes, or -1.
func status(key string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

// streamConfig is a stream of n features named f0000…, the first nNum numeric, as a
// user would write it.
func streamConfig(n, nNum, windowRows, warmup int) (*config.Stream, error) {
	var y strings.Builder
	y.WriteString("kafka: {brokers: [\"127.0.0.1:9\"]}\nstreams:\n  - name: rss\n    topic: rss\n")
	fmt.Fprintf(&y, "    window: {rows: %d}\n    reference: {warmup_windows: %d}\n    features:\n", windowRows, warmup)
	for i := 0; i < n; i++ {
		kind := "numeric"
		if i >= nNum {
			kind = "categorical"
		}
		fmt.Fprintf(&y, "      %s: {type: %s}\n", name(i), kind)
	}
	cfg, err := config.Parse([]byte(y.String()), config.ParseOptions{})
	if err != nil {
		return nil, err
	}
	return &cfg.Streams[0], nil
}

func name(i int) string { return fmt.Sprintf("f%04d", i) }

// buildRecords returns k records of rows rows: normal values in the numeric columns,
// one of categories strings in the others.
func buildRecords(n, nNum, rows, k, categories int) []arrow.Record {
	fields := make([]arrow.Field, n)
	for i := range fields {
		fields[i] = arrow.Field{Name: name(i), Type: arrow.PrimitiveTypes.Float64, Nullable: true}
		if i >= nNum {
			fields[i].Type = arrow.BinaryTypes.String
		}
	}
	schema := arrow.NewSchema(fields, nil)
	r := rand.New(rand.NewPCG(1, 2))
	cats := make([]string, categories)
	for i := range cats {
		cats[i] = "category-" + strconv.Itoa(i)
	}
	recs := make([]arrow.Record, k)
	for j := range recs {
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		for i := 0; i < n; i++ {
			switch fb := b.Field(i).(type) {
			case *array.Float64Builder:
				for range rows {
					fb.Append(r.NormFloat64()*10 + float64(i))
				}
			case *array.StringBuilder:
				for range rows {
					fb.Append(cats[r.IntN(len(cats))])
				}
			}
		}
		recs[j] = b.NewRecord()
		b.Release()
	}
	return recs
}

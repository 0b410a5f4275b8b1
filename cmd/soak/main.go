// Command soak runs driftmon's fault campaign (internal/soak) and prints its table:
// events counted once, twice and lost, window results against an undisturbed run,
// deliveries, rejections, crashes, memory and secrets in logs. It exits 1 on any
// breach, 2 when the campaign could not run.
//
//	go run ./cmd/soak -profile default            # or: make soak
//	go run ./cmd/soak -profile short -seed 42     # CI's campaign
//	go run ./cmd/soak -profile long               # an hour, a million bad messages
//
// It is flags around internal/soak.Run and imports nothing else of driftmon's.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/driftmon/driftmon/internal/soak"
)

func main() {
	// This executable is also the fallback broker (kfake) the campaign starts.
	if served, code := soak.ServeKfake(); served {
		os.Exit(code)
	}
	os.Exit(run())
}

func run() int {
	profile := flag.String("profile", "default", "short (CI, < 5 min), default (< 15 min) or long (an hour)")
	seed := flag.Uint64("seed", 0, "seed of the traffic and of the faults' moments; 0 draws one from the clock")
	kafka := flag.String("kafka", "auto", "auto (Apache Kafka through -kafka-script when Java is there, else kfake), real or kfake")
	script := flag.String("kafka-script", ".ci/kafka.sh", "the script that starts, restarts and stops Apache Kafka")
	port := flag.Int("kafka-port", 19192, "the broker's client port; the controller's is the next one")
	work := flag.String("work", "", "work directory (default: a temporary one, removed afterwards)")
	keep := flag.Bool("keep", false, "keep the temporary work directory (logs, state, results)")
	rev := flag.String("rev", "", "build driftmon from this git revision instead of the work tree")
	skip := flag.String("skip", "", "faults not to inject, comma-separated: kill, broker, webhook, slack, read-only, disk-full")
	flag.Parse()
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano()%1_000_000) + 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := soak.Run(ctx, soak.Options{Profile: *profile, Seed: *seed, Kafka: *kafka, KafkaScript: *script,
		KafkaPort: *port, WorkDir: *work, Keep: *keep, Rev: *rev, Skip: splitList(*skip), Out: os.Stdout})
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak (seed %d): %v\n", *seed, err)
		return 2
	}
	rep.Print(os.Stdout)
	if len(rep.Breaches()) > 0 {
		return 1
	}
	return 0
}

// splitList splits a comma-separated flag value, dropping blanks (fault names have no
// spaces).
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

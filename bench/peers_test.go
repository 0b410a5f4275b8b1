package bench

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// peersEnv lists the JSON files bench/peers/run.py wrote, comma-separated;
// peersTableEnv, when set, is where the markdown table goes as well as the log.
const (
	peersEnv      = "DRIFTMON_PEERS"
	peersTableEnv = "DRIFTMON_PEERS_TABLE"
)

// TestPeers puts driftmon's verdicts on the car-loan windows next to the peers' (from
// bench/peers/run.py) and the ground truth, in one markdown table. It skips unless
// DRIFTMON_PEERS names the peers' results; bench/peers/compare.sh runs everything.
func TestPeers(t *testing.T) {
	files := os.Getenv(peersEnv)
	if files == "" {
		t.Skipf("%s is not set: run bench/peers/compare.sh", peersEnv)
	}
	dm, monitored := driftmonCarLoan(t)
	gt := readGroundTruth(t, monitored)
	runs := []run{dm}
	for _, path := range strings.Split(files, ",") {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var r run
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(r.Windows) != len(dm.Windows) {
			t.Fatalf("%s has %d windows, driftmon %d", path, len(r.Windows), len(dm.Windows))
		}
		for i, w := range r.Windows {
			if w.First != dm.Windows[i].First || w.End != dm.Windows[i].End {
				t.Fatalf("%s: window %d is rows %d–%d, driftmon's %d–%d", path, i, w.First, w.End, dm.Windows[i].First, dm.Windows[i].End)
			}
		}
		runs = append(runs, r)
	}
	var b strings.Builder
	b.WriteString(detectionTable(gt, runs))
	b.WriteString("\n| tool | method | memory per window is |\n|---|---|---|\n")
	for _, r := range runs {
		b.WriteString("| " + r.Tool + " | " + r.Method + " | " + r.MemoryNote + " |\n")
	}
	t.Logf("\n%s", b.String())
	if path := os.Getenv(peersTableEnv); path != "" {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

package soak

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftmon/driftmon/internal/state"
)

// TestCutStateFileIsDamaged checks the truncated-state fault against a real state
// file: cutShort must leave a file the product refuses as damaged (whatever room
// bbolt had allocated past its last commit), and damagedOutcome must take the exit
// driftmon run makes of that error as the expected one, advice included, and refuse
// exits that crash, exit 0 or do not say what to do.
func TestCutStateFileIsDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := state.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		err := st.Update(func(tx *state.Tx) error {
			return tx.Put("soak", fmt.Sprintf("key-%04d", i), []byte(strings.Repeat("v", 500)))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cut, err := cutShort(b)
	if err != nil {
		t.Fatal(err)
	}
	if cut <= 0 || cut >= int64(len(b)) {
		t.Fatalf("cut %d bytes of %d", cut, len(b))
	}
	if err := os.Truncate(path, cut); err != nil {
		t.Fatal(err)
	}
	_, err = state.Open(path)
	if !errors.Is(err, state.ErrDamaged) {
		t.Fatalf("a file cut from %d to %d bytes opens with %v, want ErrDamaged", len(b), cut, err)
	}
	log := `{"level":"INFO","msg":"starting"}` + "\ndriftmon run: " + err.Error() + "\n"
	if got, ok := damagedOutcome(exit{code: 1, lastLog: log}); !ok || !strings.Contains(got, "cut short") {
		t.Errorf("the product's exit is judged %v: %s", ok, got)
	}
	for _, e := range []exit{
		{code: 0, lastLog: log},
		{code: 2, signal: "segmentation fault", panicked: true, lastLog: "panic: invalid freelist page"},
		{code: 1, lastLog: "driftmon run: cannot open state x: the state file is damaged: it is 4096 bytes"},
		{code: 1, lastLog: "something went wrong"},
	} {
		if got, ok := damagedOutcome(e); ok {
			t.Errorf("%+v is judged a clear error: %s", e, got)
		}
	}
	if _, err := cutShort(b[:100]); err == nil {
		t.Error("100 bytes of a state file give a cut")
	}
}

package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// contents is everything a store holds: bucket → key → value.
type contents map[string]map[string]string

func (c contents) equal(o contents) bool {
	return maps.EqualFunc(c, o, func(a, b map[string]string) bool { return maps.Equal(a, b) })
}

// buckets are the buckets the monitor keeps, as they appear in a state file.
var buckets = []string{"checkpoint", "offsets", "alert_state", "outbox/pending", "outbox/dead", "audit", "labels"}

// readAll reads every bucket of s.
func readAll(t testing.TB, s *Store) contents {
	t.Helper()
	c := contents{}
	err := s.View(func(tx *Tx) error {
		for _, b := range buckets {
			m := map[string]string{}
			if err := tx.ForEach(b, "", func(k string, v []byte) error {
				m[k] = string(v)
				return nil
			}); err != nil {
				return err
			}
			if len(m) > 0 {
				c[b] = m
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeStateFile writes a state file the way a monitor does over a while: stream
// checkpoints large enough to span overflow pages, rewritten every checkpoint;
// offsets; alert state; webhook outbox items queued, delivered (deleted) and
// dead-lettered; an audit trail; label-join state; each checkpoint one transaction.
// Checkpoints are 5 KiB to maxCheckpoint bytes. It returns what the store held
// after each of the last two commits.
func writeStateFile(t testing.TB, path string, checkpoints, streams, maxCheckpoint int) (last, previous contents) {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	blob := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	held := contents{}
	put := func(tx *Tx, b, k string, v []byte) error {
		if held[b] == nil {
			held[b] = map[string]string{}
		}
		held[b][k] = string(v)
		return tx.Put(b, k, v)
	}
	del := func(tx *Tx, b, k string) error {
		delete(held[b], k)
		return tx.Delete(b, k)
	}
	clone := func() contents {
		c := contents{}
		for b, m := range held {
			if len(m) > 0 {
				c[b] = maps.Clone(m)
			}
		}
		return c
	}
	for cp := range checkpoints {
		err := s.Update(func(tx *Tx) error {
			for st := range streams {
				name := fmt.Sprintf("credit-%d", st)
				// A checkpoint: open windows' profiles, several pages (bbolt's
				// overflow pages).
				if err := put(tx, "checkpoint", name, blob(5<<10+rng.IntN(maxCheckpoint-5<<10))); err != nil {
					return err
				}
				for p := range 4 {
					if err := put(tx, "offsets", fmt.Sprintf("%s/%d", name, p), fmt.Appendf(nil, "%d", cp*1000+p)); err != nil {
						return err
					}
				}
				state, _ := json.Marshal(map[string]any{"firing": cp%3 == 0, "since": cp, "features": []string{"income", "age"}})
				if err := put(tx, "alert_state", name, state); err != nil {
					return err
				}
			}
			for i := range 20 {
				id := fmt.Sprintf("msg_%05d", cp*20+i)
				item, _ := json.Marshal(map[string]any{"id": id, "route": "webhook retrain", "body": string(blob(200)), "attempts": 0})
				if err := put(tx, "outbox/pending", id, item); err != nil {
					return err
				}
				if err := put(tx, "audit", fmt.Sprintf("%020d", cp*20+i), fmt.Appendf(nil, `{"id":%q,"event":"queued"}`, id)); err != nil {
					return err
				}
			}
			// Earlier items are delivered (gone) or dead-lettered.
			if cp > 0 {
				for i := range 20 {
					id := fmt.Sprintf("msg_%05d", (cp-1)*20+i)
					if i%7 == 0 {
						if err := put(tx, "outbox/dead", id, []byte(held["outbox/pending"][id])); err != nil {
							return err
						}
					}
					if err := del(tx, "outbox/pending", id); err != nil {
						return err
					}
				}
			}
			return put(tx, "labels", "credit-0", blob(3000))
		})
		if err != nil {
			t.Fatal(err)
		}
		previous, last = last, clone()
	}
	if got := readAll(t, s); !got.equal(last) {
		t.Fatal("the store does not hold what was written")
	}
	return last, previous
}

// outcome is how opening a damaged copy ended.
type outcome int

const (
	opened    outcome = iota // opened, holding the last or the previous commit
	refused                  // an error wrapping ErrDamaged that tells what to do
	corrupted                // opened, holding something else: a failure
)

// openDamaged opens the damaged file at path and reads everything in it.
func openDamaged(t *testing.T, path string, last, previous contents) (outcome, string) {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		if !errors.Is(err, ErrDamaged) {
			return corrupted, fmt.Sprintf("an error that does not say the file is damaged: %v", err)
		}
		for _, want := range []string{path, "Restore the file from a backup", "committed offset"} {
			if !strings.Contains(err.Error(), want) {
				return corrupted, fmt.Sprintf("the error does not say %q: %v", want, err)
			}
		}
		return refused, err.Error()
	}
	defer s.Close()
	got := readAll(t, s)
	if got.equal(last) || got.equal(previous) {
		// And it still takes a commit.
		if err := s.Update(func(tx *Tx) error { return tx.Put("offsets", "after", []byte("1")) }); err != nil {
			return corrupted, fmt.Sprintf("opened, but cannot commit: %v", err)
		}
		return opened, ""
	}
	var diff []string
	for _, b := range buckets {
		if !maps.Equal(got[b], last[b]) {
			diff = append(diff, fmt.Sprintf("%s (%d keys, last commit %d)", b, len(got[b]), len(last[b])))
		}
	}
	return corrupted, "opened, but holds neither the last nor the previous commit; differs from the last in " + strings.Join(diff, ", ")
}

// TestDamagedFileIsAnErrorNeverACrash cuts a real state file short at many sizes
// and flips bits at many offsets: every case either opens holding the last commit
// (or, when the last commit's meta page is hit, the one before, as bbolt is built
// to do) or fails with an error that says the file is damaged and what to do.
// Before the checks, cutting the file short crashed the process (SIGSEGV/SIGBUS in
// bbolt's mapping, or "panic: invalid freelist page").
func TestDamagedFileIsAnErrorNeverACrash(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	last, previous := writeStateFile(t, good, 6, 2, 20<<10)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	const pageSize = 4096
	// The pages the last commit uses; the file is longer (bbolt grows it ahead).
	pages := int(max(decodeMeta(data[16:]).highWater, decodeMeta(data[pageSize+16:]).highWater))
	if len(data)%pageSize != 0 || pages < 30 || pages*pageSize > len(data) {
		t.Fatalf("the state file is %d bytes and its commits use %d pages; want whole pages, at least 30 used", len(data), pages)
	}
	damagedCopy := filepath.Join(dir, "damaged.db")
	try := func(b []byte) (outcome, string) {
		if err := os.WriteFile(damagedCopy, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return openDamaged(t, damagedCopy, last, previous)
	}
	tally := map[string][3]int{} // kind → opened, refused, corrupted
	count := func(kind string, o outcome) {
		c := tally[kind]
		c[o]++
		tally[kind] = c
	}
	defer func() {
		for _, kind := range slices.Sorted(maps.Keys(tally)) {
			t.Logf("%-4s %4d opened with the last or previous commit, %4d refused as damaged, %d neither", kind, tally[kind][opened], tally[kind][refused], tally[kind][corrupted])
		}
	}()

	// Cut short: at every page boundary, and within pages.
	var sizes []int
	for p := 1; p <= pages; p++ {
		sizes = append(sizes, p*pageSize, p*pageSize+pageSize/2)
	}
	sizes = append(sizes, 1, 16, 100, 1000, 4000)
	for _, n := range sizes {
		o, msg := try(data[:n])
		if o == corrupted {
			t.Errorf("cut to %d of %d bytes: %s", n, len(data), msg)
		}
		count("cut", o)
	}

	// Bit flips: every byte of both meta pages, the first 24 bytes of every other
	// page (its header and the first element's), and random bytes everywhere.
	rng := rand.New(rand.NewPCG(3, 4))
	var offsets []int
	for p := range pages {
		n := 24
		if p < 2 {
			n = 16 + metaSize
		}
		for i := range n {
			offsets = append(offsets, p*pageSize+i)
		}
	}
	for range 400 {
		offsets = append(offsets, rng.IntN(pages*pageSize))
	}
	for _, off := range offsets {
		b := bytes.Clone(data)
		b[off] ^= 1 << rng.UintN(8)
		o, msg := try(b)
		if o == corrupted {
			t.Errorf("bit flipped at byte %d (page %d, +%d): %s", off, off/pageSize, off%pageSize, msg)
		}
		count("flip", o)
	}
}

// TestFileWithoutDigestsGetsThem: a file written before the store kept digests
// opens as it is and gets them, so a value changed after that is found.
func TestFileWithoutDigestsGetsThem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	const value = "checkpoint of stream credit, as an older driftmon wrote it"
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("checkpoint"))
		if err != nil {
			return err
		}
		return b.Put([]byte("credit"), []byte(value))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatalf("a file without digests: %v", err)
	}
	if got := readAll(t, s)["checkpoint"]["credit"]; got != value {
		t.Errorf("checkpoint/credit = %q, want %q", got, value)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The value is in the page in use and in the one the migration freed.
	n := bytes.Count(data, []byte(value))
	if n == 0 {
		t.Fatal("the value is not in the file")
	}
	data = bytes.ReplaceAll(data, []byte(value), []byte(strings.Replace(value, "credit", "Credit", 1)))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), `bucket "checkpoint"`) {
		t.Errorf("Open of a file whose value changed = %v, want ErrDamaged naming bucket checkpoint", err)
	}
}

package state

import (
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkOpenChecks measures what checking a state file costs at Open, on a file
// like a monitor of 10 streams keeps (checkpoints up to 2 MiB each, an outbox and an
// audit trail; a 39 MiB file, 28 MiB of it in use, 11 MiB of data): each check
// alone, and Open with all of them against a plain bbolt.Open.
func BenchmarkOpenChecks(b *testing.B) {
	path := filepath.Join(b.TempDir(), "state.db")
	writeStateFile(b, path, 12, 10, 2<<20)
	view := func(b *testing.B, fn func(tx *bolt.Tx) error) {
		db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		b.ResetTimer()
		for b.Loop() {
			if err := db.View(fn); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			if err := verify(path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bbolt-check", func(b *testing.B) {
		view(b, func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			return nil
		})
	})
	b.Run("digests", func(b *testing.B) { view(b, checkDigests) })
	b.Run("open-checked", func(b *testing.B) {
		for b.Loop() {
			s, err := Open(path)
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
	b.Run("open-plain-bbolt", func(b *testing.B) {
		for b.Loop() {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				b.Fatal(err)
			}
			db.Close()
		}
	})
}

// BenchmarkEntryDigest measures the digest of a 1 MiB checkpoint; a Put that
// replaces one hashes the old and the new value.
func BenchmarkEntryDigest(b *testing.B) {
	v := make([]byte, 1<<20)
	b.SetBytes(int64(len(v)))
	b.ReportAllocs()
	for b.Loop() {
		entryDigest([]byte("credit-0"), v)
	}
}

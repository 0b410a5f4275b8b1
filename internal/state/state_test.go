package state

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWritesSurviveReopenAndFailedTransactionsLeaveNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := open(t, path)
	err := s.Update(func(tx *Tx) error {
		if err := tx.Put("offsets", "credit/0", []byte("42")); err != nil {
			return err
		}
		if err := tx.Put("outbox", "msg_1", []byte(`{"a":1}`)); err != nil {
			return err
		}
		if n := tx.Len("outbox"); n != 1 {
			t.Errorf("Len inside the writing transaction = %d, want 1", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = s.Update(func(tx *Tx) error {
		if err := tx.Put("offsets", "credit/0", []byte("99")); err != nil {
			return err
		}
		if err := tx.Delete("outbox", "msg_1"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want boom", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	defer s.Close()
	err = s.View(func(tx *Tx) error {
		if got := string(tx.Get("offsets", "credit/0")); got != "42" {
			t.Errorf("offset %q, want 42 (the failed transaction must not count)", got)
		}
		if got := tx.Len("outbox"); got != 1 {
			t.Errorf("outbox has %d entries, want 1", got)
		}
		if tx.Get("nope", "x") != nil {
			t.Error("a missing bucket has a value")
		}
		if err := tx.Put("x", "y", nil); !errors.Is(err, ErrReadOnly) {
			t.Errorf("write in View: %v, want ErrReadOnly", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// putKeys stores each key under itself in bucket "k".
func putKeys(t *testing.T, s *Store, keys ...string) {
	t.Helper()
	if err := s.Update(func(tx *Tx) error {
		for _, k := range keys {
			if err := tx.Put("k", k, []byte(k)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestForEachIsOrderedAndSeeks(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	defer s.Close()
	putKeys(t, s, "b/2", "a/1", "b/1", "c/1")
	var got []string
	if err := s.View(func(tx *Tx) error {
		return tx.ForEach("k", "b/", func(k string, _ []byte) error {
			got = append(got, k)
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"b/1", "b/2", "c/1"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("keys %v, want %v", got, want)
	}
}

func TestForPrefixStopsPastThePrefix(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	defer s.Close()
	putKeys(t, s, "b/2", "a/1", "b/1", "b", "b0", "c/1")
	errFn := errors.New("fn failed")
	for _, c := range []struct {
		bucket, prefix string
		fail           string // the key fn fails at
		want           string
		err            error
	}{
		{bucket: "k", prefix: "b/", want: "b/1 b/2"},
		{bucket: "k", prefix: "b", want: "b b/1 b/2 b0"},
		{bucket: "k", prefix: "", want: "a/1 b b/1 b/2 b0 c/1"},
		{bucket: "k", prefix: "c/1", want: "c/1"},
		{bucket: "k", prefix: "d", want: ""},
		{bucket: "none", prefix: "", want: ""},
		{bucket: "k", prefix: "b/", fail: "b/1", want: "b/1", err: errFn},
	} {
		var got []string
		err := s.View(func(tx *Tx) error {
			return tx.ForPrefix(c.bucket, c.prefix, func(k string, v []byte) error {
				if string(v) != k {
					t.Errorf("key %s has value %q", k, v)
				}
				got = append(got, k)
				if k == c.fail {
					return errFn
				}
				return nil
			})
		})
		if strings.Join(got, " ") != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("ForPrefix(%q, %q): keys %q, %v; want %q, %v", c.bucket, c.prefix, got, err, c.want, c.err)
		}
	}
}

func TestDeleteIfDeletesWhatItPicksUnderThePrefix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := open(t, path)
	putKeys(t, s, "a/1", "b/1", "b/2", "b/3", "c/1")
	var seen []string
	if err := s.Update(func(tx *Tx) error {
		if err := tx.DeleteIf("none", "", func(string, []byte) bool { return true }); err != nil {
			return err
		}
		return tx.DeleteIf("k", "b/", func(k string, v []byte) bool {
			seen = append(seen, k+"="+string(v))
			return k != "b/2"
		})
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Reopened, the file passes its digest check and holds the rest.
	s = open(t, path)
	defer s.Close()
	var left []string
	s.View(func(tx *Tx) error {
		return tx.ForEach("k", "", func(k string, _ []byte) error { left = append(left, k); return nil })
	})
	if got, want := strings.Join(seen, " "), "b/1=b/1 b/2=b/2 b/3=b/3"; got != want {
		t.Errorf("del saw %s, want %s", got, want)
	}
	if got, want := strings.Join(left, " "), "a/1 b/2 c/1"; got != want {
		t.Errorf("left %s, want %s", got, want)
	}
}

func TestReplicateSeesEveryChangeBeforeCommitAndCanVetoIt(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	var got []Change
	fail := false
	s.Replicate(func(c []Change) error {
		if fail {
			return errors.New("broker down")
		}
		got = append(got, c...)
		return nil
	})
	err := s.Update(func(tx *Tx) error {
		if err := tx.Put("outbox", "a", []byte("1")); err != nil {
			return err
		}
		if err := tx.Put("outbox", "b", []byte{}); err != nil {
			return err
		}
		return tx.Delete("outbox", "a")
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{{"outbox", "a", []byte("1")}, {"outbox", "b", []byte{}}, {"outbox", "a", nil}}
	if len(got) != len(want) {
		t.Fatalf("replicated %v, want %v", got, want)
	}
	for i := range want {
		if got[i].Bucket != want[i].Bucket || got[i].Key != want[i].Key || string(got[i].Value) != string(want[i].Value) ||
			(got[i].Value == nil) != (want[i].Value == nil) {
			t.Errorf("change %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// A replica that cannot take the change keeps it out of the file too.
	fail = true
	if err := s.Update(func(tx *Tx) error { return tx.Put("outbox", "c", []byte("3")) }); err == nil {
		t.Fatal("Update succeeded although the replica refused it")
	}
	_ = s.View(func(tx *Tx) error {
		if v := tx.Get("outbox", "c"); v != nil {
			t.Errorf("outbox/c = %q after a refused replication, want nothing", v)
		}
		if v := tx.Get("outbox", "b"); v == nil {
			t.Error("outbox/b is gone")
		}
		return nil
	})
}

// TestSecondOpenSaysTheFileIsHeld: while one store has the file, another Open waits
// for the lock, then says another process holds it (it does not read the file
// meanwhile: a commit in progress would look like damage).
func TestSecondOpenSaysTheFileIsHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := open(t, path)
	defer s.Close()
	if err := s.Update(func(tx *Tx) error { return tx.Put("offsets", "credit/0", []byte("42")) }); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path)
	if err == nil || !strings.Contains(err.Error(), "another process holds the file") || errors.Is(err, ErrDamaged) {
		t.Errorf("second Open = %v, want an error saying another process holds the file", err)
	}
}

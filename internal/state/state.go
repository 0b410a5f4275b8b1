// Package state is driftmon's durable store: one bbolt file holding everything that
// must survive a restart — open-window profiles, partition offsets and watermarks,
// alert state and the webhook outbox — so that one transaction can change them
// together. It knows no driftmon types: each owner keeps its own bucket and encoding,
// and it imports no driftmon package.
//
// A damaged file (cut short, or with bytes changed) is refused at Open with an error
// that says what is wrong and what to do, never a crash: Open checks the file's
// structure (verify.go) and each bucket's digest (digest.go) first.
package state

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Store is an open state file. It is safe for concurrent use; bbolt serialises writers.
type Store struct {
	db *bolt.DB
	// replicate, when set, is sent every Update's changes before it commits.
	replicate func([]Change) error
}

// Change is one key written (or, with a nil Value, deleted) by a transaction.
type Change struct {
	Bucket, Key string
	Value       []byte
}

// Replicate makes every later Update send what it changed, in order, to fn before it
// commits; when fn fails, the transaction is rolled back and Update returns the error.
// So a copy kept by fn (a compacted Kafka topic, for a cluster's leader) holds at least
// everything the file holds: a commit can still fail after fn succeeded, never the
// other way round. Call it before the store is shared.
func (s *Store) Replicate(fn func([]Change) error) { s.replicate = fn }

// ErrDamaged is wrapped by Open's error when the file is damaged: cut short (a disk
// that filled, a copy that did not finish) or with bytes changed. The error says
// what is wrong and what the operator can do.
var ErrDamaged = errors.New("the state file is damaged")

// damagedAdvice is what an operator can do about a damaged file; it says what the
// monitor does without one (internal/monitor: a stream without a checkpoint).
const damagedAdvice = "Restore the file from a backup, or move it away to start without it: " +
	"each partition is then read from the consumer group's committed offset (kafka.group_id; " +
	"driftmon commits it after every checkpoint), or from kafka.start_offset where the group has none. " +
	"What the file held is lost: the windows open at the last checkpoint start again with only the " +
	"events after it, warm-up references are built again, and the alert state, the undelivered " +
	"notifications and the audit trail are gone"

// lockTimeout is how long Open waits for another process to let go of the file.
const lockTimeout = 5 * time.Second

// Open opens (creating if needed) the state file at path. A second process opening the
// same file waits up to a few seconds and then fails, rather than corrupting it.
//
// An existing file is checked first, under a shared lock so that no writer changes
// it meanwhile: every page the last commit reaches must be in the file and well
// formed (verify.go), bbolt's consistency check must pass, and every bucket must
// hold what its digest says (digest.go). A damaged file is an error wrapping
// ErrDamaged, never a crash.
func Open(path string) (*Store, error) {
	if err := check(path); err != nil {
		return nil, fmt.Errorf("cannot open state %s: %w", path, err)
	}
	db, err := openBolt(path, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return nil, fmt.Errorf("cannot open state %s: %w", path, err)
	}
	var has bool
	_ = db.View(func(tx *bolt.Tx) error { has = tx.Bucket(digestBucket) != nil; return nil })
	if !has {
		if err := db.Update(addDigests); err != nil {
			db.Close()
			return nil, fmt.Errorf("cannot open state %s: %w", path, err)
		}
	}
	return &Store{db: db}, nil
}

// check verifies an existing, non-empty file at path, holding a shared lock.
func check(path string) error {
	if fi, err := os.Stat(path); os.IsNotExist(err) || (err == nil && fi.Size() == 0) {
		return nil // bbolt makes a new file
	}
	// A read-only open maps the file and checks the meta pages' checksums but
	// follows no page yet, so it is safe on any file; it holds the lock.
	db, err := openBolt(path, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		// Another process writes the file: reading it now would see half a commit.
		return fmt.Errorf("another process holds the file (waited %s): %w", lockTimeout, err)
	}
	if err != nil {
		// The meta pages are bad or the file too short for them: say which.
		if verr := verify(path); verr != nil {
			return describe(verr)
		}
		return err
	}
	defer db.Close()
	if err := verify(path); err != nil {
		return describe(err)
	}
	// bbolt's own check: keys in order, every page in use or free. verify has made
	// sure every page it reads is in the file.
	return describe(db.View(func(tx *bolt.Tx) error {
		var problems []string
		for err := range tx.Check() {
			if len(problems) < 3 {
				problems = append(problems, err.Error())
			}
		}
		if len(problems) > 0 {
			return damaged("bbolt's consistency check failed: %s", strings.Join(problems, "; "))
		}
		return checkDigests(tx)
	}))
}

// describe turns the damage the checks found into an error for the operator.
func describe(err error) error {
	if d, ok := errors.AsType[*damage](err); ok {
		return fmt.Errorf("%w: %s. %s", ErrDamaged, d.msg, damagedAdvice)
	}
	return err
}

// openBolt is bolt.Open that returns an error where bbolt would crash. verify keeps
// bbolt from reading outside the file; should a damage it does not know still make
// bbolt fault or panic, the fault is turned into a panic (debug.SetPanicOnFault) and
// the panic into ErrDamaged. What bbolt had opened then leaks, its lock on the file
// too (the memory mapping holds it): the caller is about to stop anyway.
func openBolt(path string, opts *bolt.Options) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: bbolt failed reading it (%v). %s", ErrDamaged, r, damagedAdvice)
		}
	}()
	return bolt.Open(path, 0o600, opts)
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Path is the file's path.
func (s *Store) Path() string { return s.db.Path() }

// Update runs fn in one read-write transaction: everything fn writes is on disk
// (fsynced) when Update returns nil, and nothing of it when fn or the commit fails.
func (s *Store) Update(fn func(tx *Tx) error) error {
	return s.db.Update(func(btx *bolt.Tx) error {
		tx := &Tx{tx: btx, record: s.replicate != nil, digests: map[string]uint64{}}
		if err := fn(tx); err != nil {
			return err
		}
		if err := saveDigests(btx, tx.digests); err != nil {
			return err
		}
		if s.replicate == nil || len(tx.changes) == 0 {
			return nil
		}
		return s.replicate(tx.changes)
	})
}

// View runs fn in a read-only transaction that sees one consistent snapshot.
func (s *Store) View(fn func(tx *Tx) error) error {
	return s.db.View(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx}) })
}

// Tx is a transaction. Byte slices it returns are valid only until the transaction
// ends; copy what you keep.
type Tx struct {
	tx *bolt.Tx
	// record says to keep changes, for Store.Replicate.
	record  bool
	changes []Change
	// digests is what the transaction changed of each bucket's digest (digest.go).
	digests map[string]uint64
}

// ErrReadOnly is returned by writes in a View transaction.
var ErrReadOnly = errors.New("state: write in a read-only transaction")

// Put stores value under key in bucket, creating the bucket if needed.
func (t *Tx) Put(bucket, key string, value []byte) error {
	if !t.tx.Writable() {
		return ErrReadOnly
	}
	b, err := t.tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return fmt.Errorf("cannot create bucket %s: %w", bucket, err)
	}
	if err := mark(b); err != nil {
		return fmt.Errorf("cannot create bucket %s: %w", bucket, err)
	}
	d := entryDigest([]byte(key), value)
	if old, ok := lookup(b, key); ok {
		d ^= entryDigest([]byte(key), old)
	}
	if err := b.Put([]byte(key), value); err != nil {
		return fmt.Errorf("cannot write %s/%s: %w", bucket, key, err)
	}
	t.digests[bucket] ^= d
	if t.record {
		// bbolt keeps value until the transaction ends; a copy outlives it. A nil
		// value would read as a deletion.
		t.changes = append(t.changes, Change{Bucket: bucket, Key: key, Value: append([]byte{}, value...)})
	}
	return nil
}

// Get returns the value under key in bucket, or nil.
func (t *Tx) Get(bucket, key string) []byte {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	return b.Get([]byte(key))
}

// Delete removes key from bucket; a missing key or bucket is not an error.
func (t *Tx) Delete(bucket, key string) error {
	if !t.tx.Writable() {
		return ErrReadOnly
	}
	if t.record {
		t.changes = append(t.changes, Change{Bucket: bucket, Key: key})
	}
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	old, ok := lookup(b, key)
	if !ok {
		return nil
	}
	if err := b.Delete([]byte(key)); err != nil {
		return err
	}
	t.digests[bucket] ^= entryDigest([]byte(key), old)
	return nil
}

// lookup returns key's value in b and whether it is there (bbolt's Get cannot tell
// an empty value from none).
func lookup(b *bolt.Bucket, key string) ([]byte, bool) {
	k, v := b.Cursor().Seek([]byte(key))
	return v, k != nil && string(k) == key
}

// ForEach calls fn for every key of bucket in byte order, from the first key that is
// ≥ from ("" for all). It stops at fn's first error and returns it. fn must not
// change the bucket.
func (t *Tx) ForEach(bucket, from string, fn func(key string, value []byte) error) error {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	c := b.Cursor()
	var k, v []byte
	if from == "" {
		k, v = c.First()
	} else {
		k, v = c.Seek([]byte(from))
	}
	for ; k != nil; k, v = c.Next() {
		if err := fn(string(k), v); err != nil {
			return err
		}
	}
	return nil
}

// ForPrefix calls fn for every key of bucket that starts with prefix, in byte order.
// It stops at fn's first error and returns it. fn must not change the bucket.
func (t *Tx) ForPrefix(bucket, prefix string, fn func(key string, value []byte) error) error {
	err := t.ForEach(bucket, prefix, func(key string, value []byte) error {
		if !strings.HasPrefix(key, prefix) {
			return errPastPrefix
		}
		return fn(key, value)
	})
	if err == errPastPrefix {
		return nil
	}
	return err
}

// DeleteIf deletes the keys of bucket that start with prefix and that del picks (del
// sees each key and value, in byte order, and must not change the bucket).
func (t *Tx) DeleteIf(bucket, prefix string, del func(key string, value []byte) bool) error {
	var gone []string
	_ = t.ForPrefix(bucket, prefix, func(key string, value []byte) error {
		if del(key, value) {
			gone = append(gone, key)
		}
		return nil
	})
	for _, key := range gone {
		if err := t.Delete(bucket, key); err != nil {
			return err
		}
	}
	return nil
}

// errPastPrefix ends ForPrefix's scan at the first key past the prefix.
var errPastPrefix = errors.New("past the prefix")

// Len is the number of keys in bucket, this transaction's own writes included (bbolt's
// bucket statistics miss those, so it counts with a cursor).
func (t *Tx) Len(bucket string) int {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return 0
	}
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}

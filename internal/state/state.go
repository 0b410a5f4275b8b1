// Package state is driftmon's durable store: one bbolt file holding everything that
// must survive a restart — open-window profiles, partition offsets and watermarks,
// alert state and the webhook outbox — so that one transaction can change them
// together. It knows no driftmon types: each owner keeps its own bucket and encoding,
// and it imports no driftmon package.
package state

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
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

// Open opens (creating if needed) the state file at path. A second process opening the
// same file waits up to a few seconds and then fails, rather than corrupting it.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("cannot open state %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Path is the file's path.
func (s *Store) Path() string { return s.db.Path() }

// Update runs fn in one read-write transaction: everything fn writes is on disk
// (fsynced) when Update returns nil, and nothing of it when fn or the commit fails.
func (s *Store) Update(fn func(tx *Tx) error) error {
	return s.db.Update(func(btx *bolt.Tx) error {
		tx := &Tx{tx: btx, record: s.replicate != nil}
		if err := fn(tx); err != nil {
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
	if err := b.Put([]byte(key), value); err != nil {
		return fmt.Errorf("cannot write %s/%s: %w", bucket, key, err)
	}
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
	return b.Delete([]byte(key))
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

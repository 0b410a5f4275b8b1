package alerting

// Tx is what alerting reads and writes inside a transaction of the state store:
// values under keys in named buckets. The outbox, the audit trail and the policy's
// silences keep their records this way, in the transaction that commits the windows
// and alert state they come from, so a record exists exactly when its cause was
// committed. internal/state's *Tx is one; alerting does not import it.
type Tx interface {
	// Get returns the value under key in bucket, or nil; it is valid only until
	// the transaction ends.
	Get(bucket, key string) []byte
	// Put stores value under key in bucket, creating the bucket if needed.
	Put(bucket, key string, value []byte) error
	// Delete removes key from bucket; a missing key is not an error.
	Delete(bucket, key string) error
	// ForEach calls fn for every key of bucket in byte order, from the first key
	// ≥ from ("" for all), and stops at fn's first error, which it returns.
	ForEach(bucket, from string, fn func(key string, value []byte) error) error
	// ForPrefix calls fn for every key of bucket that starts with prefix, in byte
	// order, and stops at fn's first error, which it returns.
	ForPrefix(bucket, prefix string, fn func(key string, value []byte) error) error
	// DeleteIf deletes the keys of bucket that start with prefix and that del
	// picks (del sees each key and value, in byte order).
	DeleteIf(bucket, prefix string, del func(key string, value []byte) bool) error
	// Len is the number of keys in bucket, the transaction's own writes included.
	Len(bucket string) int
}

// Store runs transactions of type T: Update one read-write transaction that
// commits all fn wrote or nothing, View a read-only one on a consistent snapshot.
// internal/state's *Store is a Store[*state.Tx], so callers pass it as it is and
// Go infers T.
type Store[T Tx] interface {
	Update(fn func(tx T) error) error
	View(fn func(tx T) error) error
}

package state

// Bucket digests: what bbolt cannot see.
//
// bbolt checksums its meta pages only. A changed byte inside a value or a key, or a
// page header whose element count shrank (entries silently dropped), leaves a file
// that verify and bbolt's check both pass and that opens with other contents. So the
// store keeps, for every bucket, a digest of what it holds: the XOR of a hash of each
// entry (key and value), updated by every Put and Delete in the same transaction,
// and kept in a bucket of its own. Open recomputes every bucket's digest
// and compares: a file whose contents are not what its last commit wrote is refused.
// XOR makes the digest independent of order and cheap to update: a Put xors out the
// old entry and xors in the new one. The entry hash must not be linear: the XOR of
// CRCs of entries that differ only in counters (msg_00001, msg_00002, ...) is often
// 0, so that losing a run of them went unseen; SHA-256 (cut to 64 bits) is not, and
// is the fastest hash in the standard library on machines with SHA instructions.

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// digestBucket holds each bucket's digest (8 bytes, little-endian) under its name.
// The leading NUL keeps it apart from any bucket name the monitor uses.
var digestBucket = []byte("\x00digests")

// bucketMark is the sequence number of every bucket of a file that keeps digests
// (bbolt keeps a sequence in each bucket's header; the store uses it for nothing
// else). A file without the digest bucket is one written before digests, to be given
// them, unless a bucket has this mark: then the digest bucket itself was damaged.
const bucketMark = 0x64726966746d6f6e // "driftmon"

// mark gives b the mark, once.
func mark(b *bolt.Bucket) error {
	if b.Sequence() == bucketMark {
		return nil
	}
	return b.SetSequence(bucketMark)
}

// entryDigest is the digest of one entry: the key's length, the key, the value.
func entryDigest(key, value []byte) uint64 {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(key)))])
	h.Write(key)
	h.Write(value)
	var sum [sha256.Size]byte
	return binary.LittleEndian.Uint64(h.Sum(sum[:0]))
}

// saveDigests folds the transaction's changes (bucket → XOR of entry digests in and
// out) into the stored digests.
func saveDigests(tx *bolt.Tx, changes map[string]uint64) error {
	if len(changes) == 0 {
		return nil
	}
	db, err := tx.CreateBucketIfNotExists(digestBucket)
	if err != nil {
		return fmt.Errorf("cannot create the digest bucket: %w", err)
	}
	for bucket, d := range changes {
		if old := db.Get([]byte(bucket)); len(old) == 8 {
			d ^= binary.LittleEndian.Uint64(old)
		}
		if err := db.Put([]byte(bucket), binary.LittleEndian.AppendUint64(nil, d)); err != nil {
			return fmt.Errorf("cannot write the digest of %s: %w", bucket, err)
		}
	}
	return nil
}

// bucketDigests computes the digest of every bucket but the digests' own.
func bucketDigests(tx *bolt.Tx) (map[string]uint64, error) {
	out := map[string]uint64{}
	err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		if string(name) == string(digestBucket) {
			return nil
		}
		var d uint64
		err := b.ForEach(func(k, v []byte) error {
			if v == nil && b.Bucket(k) != nil {
				return damaged("bucket %q holds a bucket %q; the store writes none", name, k)
			}
			d ^= entryDigest(k, v)
			return nil
		})
		out[string(name)] = d
		return err
	})
	return out, err
}

// checkDigests compares every bucket with its stored digest. A file written before
// the store kept digests has none and passes; addDigests gives it them.
func checkDigests(tx *bolt.Tx) error {
	db := tx.Bucket(digestBucket)
	if db == nil {
		if k, _ := tx.Cursor().Seek(digestBucket); string(k) == string(digestBucket) {
			return damaged("the digest bucket is not a bucket")
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if b.Sequence() == bucketMark {
				return damaged("the digest bucket is missing, though bucket %q was written with digests", name)
			}
			return nil
		})
	}
	got, err := bucketDigests(tx)
	if err != nil {
		return err
	}
	want := map[string]uint64{}
	err = db.ForEach(func(k, v []byte) error {
		if len(v) != 8 {
			return damaged("the digest of bucket %q is %d bytes, not 8", k, len(v))
		}
		want[string(k)] = binary.LittleEndian.Uint64(v)
		return nil
	})
	if err != nil {
		return err
	}
	for name, d := range got {
		if d != want[name] {
			return damaged("bucket %q does not hold what the last commit wrote (its digest differs): an entry was changed or lost", name)
		}
	}
	for name, d := range want {
		if _, ok := got[name]; !ok && d != 0 {
			return damaged("bucket %q is missing", name)
		}
	}
	return nil
}

// addDigests gives a file without digests (written before the store kept them, or
// new) the digests of what it holds.
func addDigests(tx *bolt.Tx) error {
	if tx.Bucket(digestBucket) != nil {
		return nil
	}
	got, err := bucketDigests(tx)
	if err != nil {
		return err
	}
	for name := range got {
		if err := mark(tx.Bucket([]byte(name))); err != nil {
			return fmt.Errorf("cannot mark bucket %s: %w", name, err)
		}
	}
	if _, err := tx.CreateBucket(digestBucket); err != nil {
		return fmt.Errorf("cannot create the digest bucket: %w", err)
	}
	return saveDigests(tx, got)
}

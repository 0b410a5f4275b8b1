// Package wire reads and writes the small binary layouts driftmon keeps in its state
// file and its cluster topic (profiles, checkpoints, partition records, partials):
// varints, length-prefixed strings and blobs.
//
// It owns no layout of its own; each layout is documented where it is encoded. It
// imports nothing of driftmon, and must not.
package wire

import (
	"encoding/binary"
	"fmt"
	"math"
)

// AppendString appends s as a uvarint length and its bytes.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendBlob appends p as a uvarint length and its bytes.
func AppendBlob(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// Reader reads bytes written with encoding/binary varints and AppendString/AppendBlob.
// The first problem sticks (Err) and makes every later read return a zero value, so a
// decoder reads a whole layout and checks once. Lengths are checked against the bytes
// left before anything is allocated: no input makes it allocate more than its size.
type Reader struct {
	// B is what is left to read.
	B   []byte
	err error
}

// NewReader returns a Reader of b.
func NewReader(b []byte) *Reader { return &Reader{B: b} }

// Err is the first problem met, or nil.
func (r *Reader) Err() error { return r.err }

// Fail records a problem of the caller's (a value out of range, say), unless one is
// recorded already.
func (r *Reader) Fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.B) == 0 {
		r.Fail("truncated")
		return 0
	}
	v := r.B[0]
	r.B = r.B[1:]
	return v
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 { return varint(r, binary.Uvarint) }

// Varint reads a signed varint.
func (r *Reader) Varint() int64 { return varint(r, binary.Varint) }

// varint reads one varint with read (binary.Uvarint or binary.Varint).
func varint[T uint64 | int64](r *Reader, read func([]byte) (T, int)) T {
	if r.err != nil {
		return 0
	}
	v, n := read(r.B)
	if n <= 0 {
		r.Fail("bad varint")
		return 0
	}
	r.B = r.B[n:]
	return v
}

// Count reads a non-negative int64 written as a uvarint.
func (r *Reader) Count() int64 { return upTo(r, int64(math.MaxInt64), "count") }

// Partition reads a Kafka partition number written as a uvarint.
func (r *Reader) Partition() int32 { return upTo(r, int32(math.MaxInt32), "partition") }

// upTo reads a uvarint that must be at most limit; what names it in the error.
func upTo[T int32 | int64](r *Reader, limit T, what string) T {
	v := r.Uvarint()
	if v > uint64(limit) {
		r.Fail("%s %d out of range", what, v)
		return 0
	}
	return T(v)
}

// Length reads a number of items that need at least minSize bytes each, and fails
// when the bytes left cannot hold them.
func (r *Reader) Length(minSize int) int {
	v := r.Uvarint()
	if r.err == nil && v > uint64(len(r.B)/minSize) {
		r.Fail("length %d exceeds the %d bytes left", v, len(r.B))
	}
	if r.err != nil {
		return 0
	}
	return int(v)
}

// Blob reads a length-prefixed blob; it aliases the input.
func (r *Reader) Blob() []byte {
	n := r.Length(1)
	if r.err != nil {
		return nil
	}
	v := r.B[:n:n]
	r.B = r.B[n:]
	return v
}

// String reads a length-prefixed string.
func (r *Reader) String() string { return string(r.Blob()) }

// Bytes reads n bytes; it aliases the input.
func (r *Reader) Bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.B) < n {
		r.Fail("truncated")
		return nil
	}
	v := r.B[:n:n]
	r.B = r.B[n:]
	return v
}

// Uint64 reads 8 bytes, little-endian.
func (r *Reader) Uint64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.B) < 8 {
		r.Fail("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint64(r.B)
	r.B = r.B[8:]
	return v
}

package ingest

import (
	"errors"
	"unsafe"
)

// budgetAllocator is the memory the IPC reader allocates while reading one message: at
// most ipcMemoryBudget bytes in all (exceeding it panics, which the reader turns into an
// error), carved from chunks that are reused for the next message (reset) instead of
// being left to the garbage collector: the reader copies every buffer of every batch,
// which made fresh Go memory most of the cost of a batched message. Nothing the reader
// allocated is used after decodeMessage returns (the rows are converted into the
// decoder's scratch first), which is what makes the reuse safe.
type budgetAllocator struct {
	left   int
	chunks [][]byte // each 64-byte aligned
	cur    int      // chunk being carved
	off    int      // next free byte in chunks[cur]
}

var errIPCBudget = errors.New("message needs more than the memory budget")

const (
	arenaChunk = 1 << 20 // smallest chunk
	arenaKeep  = 32 << 20
)

// reset makes all chunks free again and restores the budget; chunks beyond arenaKeep
// bytes (left by an unusually large message) are dropped.
func (a *budgetAllocator) reset() {
	a.left, a.cur, a.off = ipcMemoryBudget, 0, 0
	kept := 0
	for i, c := range a.chunks {
		if kept += len(c); kept > arenaKeep {
			clear(a.chunks[i:])
			a.chunks = a.chunks[:i]
			break
		}
	}
}

func (a *budgetAllocator) take(n int) {
	if n < 0 || n > a.left {
		panic(errIPCBudget)
	}
	a.left -= n
}

// Allocate returns size zeroed bytes, 64-byte aligned, with no spare capacity (as
// memory.GoAllocator does).
func (a *budgetAllocator) Allocate(size int) []byte {
	a.take(size)
	n := (size + 63) &^ 63
	for ; a.cur < len(a.chunks); a.cur, a.off = a.cur+1, 0 {
		if c := a.chunks[a.cur]; a.off+n <= len(c) {
			b := c[a.off : a.off+size : a.off+size]
			a.off += n
			clear(b)
			return b
		}
	}
	c := alignedBytes(max(n, arenaChunk))
	a.chunks = append(a.chunks, c)
	a.cur, a.off = len(a.chunks)-1, n
	return c[:size:size]
}

// alignedBytes returns n zeroed bytes starting at a multiple of 64.
func alignedBytes(n int) []byte {
	b := make([]byte, n+64)
	shift := (64 - int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))&63)) & 63
	return b[shift : shift+n : shift+n]
}

func (a *budgetAllocator) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) {
		return b[:size]
	}
	nb := a.Allocate(size)
	copy(nb, b)
	return nb
}

// Free does nothing: the memory is reused after reset.
func (a *budgetAllocator) Free([]byte) {}

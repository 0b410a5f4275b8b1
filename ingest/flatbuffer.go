package ingest

import (
	"encoding/binary"
)

// Arrow's Go IPC reader follows the flatbuffers of the metadata without verifying them:
// a vector length becomes a make() and an offset that wraps around makes a cycle, both
// fatal (out of memory, stack overflow) rather than a recoverable panic. The C++ reader
// runs the flatbuffers verifier; verifyIPCMetadata is the subset of it that matters: it
// follows every table, vector and string the Go reader follows (Message.fbs and
// Schema.fbs), with the Go runtime's uint32 arithmetic, and checks that each lies within
// the metadata, that field nesting stays shallow and that no more tables are visited than
// the metadata has room for. Scalars are left to the reader: reading one out of range is
// a panic it recovers from.

// fbVerifier walks one flatbuffer.
type fbVerifier struct {
	b      []byte
	tables int // tables that may still be visited
}

// fbTable is a verified table: its position and its vtable's.
type fbTable struct {
	pos, vtable uint32
	vtableLen   uint16
}

const (
	maxFieldDepth = 64
	fbTypeUnion   = 14 // Type.Union in Schema.fbs
	fbTypeStamp   = 10 // Type.Timestamp
)

func (v *fbVerifier) u32(pos uint32) (uint32, bool) {
	if uint64(pos)+4 > uint64(len(v.b)) {
		return 0, false
	}
	return binary.LittleEndian.Uint32(v.b[pos:]), true
}

func (v *fbVerifier) table(pos uint32) (fbTable, bool) {
	if v.tables--; v.tables < 0 {
		return fbTable{}, false
	}
	so, ok := v.u32(pos)
	if !ok {
		return fbTable{}, false
	}
	vt := uint32(int32(pos) - int32(so))
	if uint64(vt)+2 > uint64(len(v.b)) {
		return fbTable{}, false
	}
	n := binary.LittleEndian.Uint16(v.b[vt:])
	if uint64(vt)+uint64(n) > uint64(len(v.b)) {
		return fbTable{}, false
	}
	return fbTable{pos: pos, vtable: vt, vtableLen: n}, true
}

// field returns the offset of field id within t, 0 when absent. Like the Go runtime, it
// takes the field as present when its vtable entry starts before the vtable's length,
// even if the entry ends after it; ok is false when the entry lies outside the buffer.
func (v *fbVerifier) field(t fbTable, id int) (off uint32, ok bool) {
	o := uint32(4 + 2*id)
	if o >= uint32(t.vtableLen) {
		return 0, true
	}
	if uint64(t.vtable)+uint64(o)+2 > uint64(len(v.b)) {
		return 0, false
	}
	return uint32(binary.LittleEndian.Uint16(v.b[t.vtable+o:])), true
}

// ref follows the offset stored in field id of t; present is false when the field is absent.
func (v *fbVerifier) ref(t fbTable, id int) (target uint32, present, ok bool) {
	o, ok := v.field(t, id)
	if o == 0 || !ok {
		return 0, false, ok
	}
	p := t.pos + o
	x, ok := v.u32(p)
	return p + x, true, ok
}

// sub verifies the table in field id of t, if any.
func (v *fbVerifier) sub(t fbTable, id int) (fbTable, bool, bool) {
	x, present, ok := v.ref(t, id)
	if !present || !ok {
		return fbTable{}, present, ok
	}
	st, ok := v.table(x)
	return st, true, ok
}

// vector checks the vector (or string) in field id of t and returns where its elements
// start and how many there are.
func (v *fbVerifier) vector(t fbTable, id int, elemSize uint64) (uint32, int, bool) {
	x, present, ok := v.ref(t, id)
	if !present || !ok {
		return 0, 0, ok
	}
	n, ok := v.u32(x)
	start := x + 4
	if !ok || uint64(start)+uint64(n)*elemSize > uint64(len(v.b)) {
		return 0, 0, false
	}
	return start, int(n), true
}

// tables verifies each table of the vector of tables in field id of t with check.
func (v *fbVerifier) tablesIn(t fbTable, id int, check func(fbTable) bool) bool {
	start, n, ok := v.vector(t, id, 4)
	for j := 0; ok && j < n; j++ {
		p := start + uint32(4*j)
		var x uint32
		x, ok = v.u32(p)
		var et fbTable
		if et, ok = v.table(p + x); ok {
			ok = check(et)
		}
	}
	return ok
}

func (v *fbVerifier) keyValues(t fbTable, id int) bool {
	return v.tablesIn(t, id, func(kv fbTable) bool {
		_, _, ok1 := v.vector(kv, 0, 1)
		_, _, ok2 := v.vector(kv, 1, 1)
		return ok1 && ok2
	})
}

func (v *fbVerifier) u8(t fbTable, id int) (byte, bool) {
	o, ok := v.field(t, id)
	if o == 0 || !ok {
		return 0, ok
	}
	if uint64(t.pos)+uint64(o) >= uint64(len(v.b)) {
		return 0, false
	}
	return v.b[t.pos+o], true
}

// verifyField checks a Field table and its children.
func (v *fbVerifier) verifyField(t fbTable, depth int) bool {
	if depth > maxFieldDepth {
		return false
	}
	if _, _, ok := v.vector(t, 0, 1); !ok { // name
		return false
	}
	typ, ok := v.u8(t, 2)
	if !ok {
		return false
	}
	tt, present, ok := v.sub(t, 3) // type
	if !ok {
		return false
	}
	if present {
		switch typ {
		case fbTypeUnion:
			_, _, ok = v.vector(tt, 1, 4) // typeIds
		case fbTypeStamp:
			_, _, ok = v.vector(tt, 1, 1) // timezone
		}
		if !ok {
			return false
		}
	}
	if dict, present, ok := v.sub(t, 4); !ok {
		return false
	} else if present {
		if _, _, ok := v.sub(dict, 1); !ok { // indexType
			return false
		}
	}
	return v.tablesIn(t, 5, func(c fbTable) bool { return v.verifyField(c, depth+1) }) && v.keyValues(t, 6)
}

func (v *fbVerifier) verifyRecordBatch(t fbTable) bool {
	_, _, ok1 := v.vector(t, 1, 16) // nodes: FieldNode structs
	_, _, ok2 := v.vector(t, 2, 16) // buffers: Buffer structs
	_, _, ok3 := v.sub(t, 3)        // compression
	_, _, ok4 := v.vector(t, 4, 8)  // variadicBufferCounts
	return ok1 && ok2 && ok3 && ok4
}

// verifyIPCMetadata verifies the Message flatbuffer of one IPC message and returns its
// bodyLength.
func verifyIPCMetadata(meta []byte) (int64, bool) {
	v := &fbVerifier{b: meta, tables: len(meta) / 4}
	root, ok := v.u32(0)
	if !ok {
		return 0, false
	}
	m, ok := v.table(root)
	if !ok || !v.keyValues(m, 4) {
		return 0, false
	}
	headerType, ok := v.u8(m, 1)
	if !ok {
		return 0, false
	}
	h, present, ok := v.sub(m, 2)
	if !ok {
		return 0, false
	}
	if present {
		switch headerType {
		case 1: // Schema
			ok = v.tablesIn(h, 1, func(f fbTable) bool { return v.verifyField(f, 0) }) && v.keyValues(h, 2)
			if ok {
				_, _, ok = v.vector(h, 3, 8) // features
			}
		case 2: // DictionaryBatch
			var data fbTable
			if data, present, ok = v.sub(h, 1); ok && present {
				ok = v.verifyRecordBatch(data)
			}
		case 3: // RecordBatch
			ok = v.verifyRecordBatch(h)
		}
		if !ok {
			return 0, false
		}
	}
	o, ok := v.field(m, 3) // bodyLength
	if o == 0 || !ok {
		return 0, ok
	}
	if uint64(m.pos)+uint64(o)+8 > uint64(len(meta)) {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(meta[m.pos+o:])), true
}

package state

// Checking a state file before bbolt uses it.
//
// bbolt trusts its file: it maps it into memory and follows the page numbers it
// finds there. A file cut short (a disk that filled, a copy that did not finish) or
// with bytes changed makes it read past the end of the mapping (SIGSEGV or SIGBUS,
// which no recover catches) or panic ("invalid freelist page"). So before bbolt
// follows a page number (Open has it read the meta pages only, read-only, for its
// lock), verify reads the file with bounds checks and walks everything the last
// commit reaches, as bbolt will: the meta page bbolt will use, the freelist, and
// every bucket's B+tree. Only a file that passes is used: bbolt's own consistency
// check (Tx.Check: key order, every page reachable or free) then runs over the same
// pages, now known to be in bounds, and then the bucket digests (digest.go).
//
// The layout (go.etcd.io/bbolt/internal/common, file format version 2), native byte
// order:
//
//	page header (16 bytes): id u64 | flags u16 | count u16 | overflow u32
//	meta (after the header): magic u32 | version u32 | page size u32 | flags u32
//	    | root bucket (root page u64, sequence u64) | freelist page u64
//	    | high-water mark u64 (pages in use) | txid u64 | FNV-64a of the above u64
//	branch element (16 bytes): pos u32 | key size u32 | child page u64
//	leaf element (16 bytes): flags u32 | pos u32 | key size u32 | value size u32
//	    (pos counts from the element; the value follows the key)
//	bucket value: root page u64 | sequence u64 [| inline leaf page, when root is 0]
//	freelist: count page ids u64 (count 0xFFFF: the first u64 is the count)

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

const (
	pageHeaderSize  = 16
	elementSize     = 16
	metaSize        = 64 // up to and with the checksum
	metaSummed      = 56 // the bytes the checksum covers
	boltMagic       = 0xED0CDAED
	boltVersion     = 2
	branchPageFlag  = 0x01
	leafPageFlag    = 0x02
	freelistFlag    = 0x10
	bucketLeafFlag  = 0x01
	noFreelist      = ^uint64(0)
	bucketValueSize = 16
)

var ne = binary.NativeEndian

// meta is a decoded meta page.
type meta struct {
	pageSize           uint32
	root, freelist     uint64
	highWater, txid    uint64
	checksumOK, magics bool
}

func decodeMeta(b []byte) meta {
	m := meta{
		magics:    ne.Uint32(b[0:]) == boltMagic && ne.Uint32(b[4:]) == boltVersion,
		pageSize:  ne.Uint32(b[8:]),
		root:      ne.Uint64(b[16:]),
		freelist:  ne.Uint64(b[32:]),
		highWater: ne.Uint64(b[40:]),
		txid:      ne.Uint64(b[48:]),
	}
	h := fnv.New64a()
	h.Write(b[:metaSummed])
	m.checksumOK = h.Sum64() == ne.Uint64(b[metaSummed:])
	return m
}

func (m meta) valid() bool { return m.magics && m.checksumOK }

// damage is what verify found wrong; Open wraps it in ErrDamaged.
type damage struct{ msg string }

func (d *damage) Error() string { return d.msg }

func damaged(format string, args ...any) error {
	return &damage{fmt.Sprintf(format, args...)}
}

// verify checks the bbolt file at path as described above. A missing or empty file
// passes: bbolt makes a new one. The file must not be written meanwhile (Open holds
// bbolt's lock while it runs).
func verify(path string) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	size := fi.Size()
	if size == 0 {
		return nil
	}
	v := &verifier{f: f, size: size}
	m, err := v.meta()
	if err != nil {
		return err
	}
	return v.walk(m)
}

type verifier struct {
	f        *os.File
	size     int64
	pageSize int64
	hwm      uint64
	// seen holds every page reached so far: a page reached twice (a loop, or two
	// parents) is damage, and so no walk can go round for ever.
	seen  map[uint64]bool
	freed map[uint64]bool
}

// read reads n bytes at off, which must be within the file.
func (v *verifier) read(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off+n > v.size {
		return nil, damaged("it is %d bytes, cut short: a page at byte %d needs %d more", v.size, off, off+n-v.size)
	}
	b := make([]byte, n)
	if _, err := v.f.ReadAt(b, off); err != nil && err != io.EOF {
		return nil, fmt.Errorf("cannot read %s: %w", v.f.Name(), err)
	}
	return b, nil
}

// meta finds the page size and the meta page bbolt will use (the valid one with the
// higher transaction id), as bbolt's Open does, and checks it against the file.
func (v *verifier) meta() (meta, error) {
	var m0, m1 meta
	if v.size >= pageHeaderSize+metaSize {
		b, err := v.read(pageHeaderSize, metaSize)
		if err != nil {
			return meta{}, err
		}
		m0 = decodeMeta(b)
	}
	switch {
	case m0.valid():
		v.pageSize = int64(m0.pageSize)
	default:
		// bbolt looks for the second meta page at each page size from 1 KiB.
		for ps := int64(1024); ps <= 16<<20 && ps+pageHeaderSize+metaSize <= v.size; ps *= 2 {
			b, err := v.read(ps+pageHeaderSize, metaSize)
			if err != nil {
				return meta{}, err
			}
			if m := decodeMeta(b); m.valid() {
				v.pageSize = int64(m.pageSize)
				break
			}
		}
	}
	if v.pageSize == 0 {
		return meta{}, damaged("neither meta page is valid (%d bytes): this is not a bbolt state file, or both its headers are damaged", v.size)
	}
	if v.pageSize < 512 || v.pageSize&(v.pageSize-1) != 0 {
		return meta{}, damaged("its meta page says pages are %d bytes", v.pageSize)
	}
	if v.size < 2*v.pageSize {
		return meta{}, damaged("it is %d bytes, cut short: its two meta pages alone take %d", v.size, 2*v.pageSize)
	}
	// bbolt reads the meta pages at this page size, and trusts one whose magic,
	// version and checksum are right (not its page header).
	for i, m := range []*meta{&m0, &m1} {
		b, err := v.read(int64(i)*v.pageSize+pageHeaderSize, metaSize)
		if err != nil {
			return meta{}, err
		}
		*m = decodeMeta(b)
	}
	use, other := m0, m1
	if m1.txid > m0.txid {
		use, other = m1, m0
	}
	if !use.valid() {
		use = other
	}
	if !use.valid() {
		return meta{}, damaged("neither meta page is valid: both headers are damaged")
	}
	v.hwm = use.highWater
	switch {
	case int64(use.pageSize) != v.pageSize:
		return meta{}, damaged("its meta pages disagree on the page size (%d, %d)", use.pageSize, v.pageSize)
	case use.highWater < 3:
		return meta{}, damaged("its last commit says it has %d pages", use.highWater)
	case int64(use.highWater) > v.size/v.pageSize:
		return meta{}, damaged("it is %d bytes, but its last commit (transaction %d) needs %d: the file was cut short",
			v.size, use.txid, use.highWater*uint64(v.pageSize))
	case use.root < 2 || use.root >= use.highWater:
		return meta{}, damaged("its root page %d is out of range", use.root)
	case use.freelist != noFreelist && (use.freelist < 2 || use.freelist >= use.highWater):
		return meta{}, damaged("its freelist page %d is out of range", use.freelist)
	}
	return use, nil
}

// walk checks the freelist and the tree of m, and that every page below the
// high-water mark is either reached or free.
func (v *verifier) walk(m meta) error {
	v.seen = map[uint64]bool{0: true, 1: true}
	v.freed = map[uint64]bool{}
	if m.freelist != noFreelist {
		if err := v.freelist(m.freelist); err != nil {
			return err
		}
	}
	if err := v.tree(m.root, 0); err != nil {
		return err
	}
	for id := uint64(2); id < v.hwm; id++ {
		if !v.seen[id] && !v.freed[id] {
			return damaged("page %d is neither in use nor free", id)
		}
	}
	return nil
}

// page reads page id with its overflow pages, after checking its header.
func (v *verifier) page(id uint64, flags ...uint16) ([]byte, error) {
	if id < 2 || id >= v.hwm {
		return nil, damaged("a reference to page %d, out of range [2, %d)", id, v.hwm)
	}
	if v.seen[id] {
		return nil, damaged("page %d is referred to twice", id)
	}
	h, err := v.read(int64(id)*v.pageSize, pageHeaderSize)
	if err != nil {
		return nil, err
	}
	if got := ne.Uint64(h); got != id {
		return nil, damaged("page %d says it is page %d", id, got)
	}
	fl := ne.Uint16(h[8:])
	ok := false
	for _, want := range flags {
		ok = ok || fl == want
	}
	if !ok {
		return nil, damaged("page %d has type %#x", id, fl)
	}
	n := uint64(ne.Uint32(h[12:])) + 1
	if n > v.hwm-id {
		return nil, damaged("page %d runs %d pages, past the last page %d", id, n, v.hwm-1)
	}
	for i := id; i < id+n; i++ {
		switch {
		case v.seen[i]:
			return nil, damaged("page %d is referred to twice", i)
		case v.freed[i]:
			return nil, damaged("page %d is in use and free", i)
		}
		v.seen[i] = true
	}
	return v.read(int64(id)*v.pageSize, int64(n)*v.pageSize)
}

func (v *verifier) freelist(id uint64) error {
	p, err := v.page(id, freelistFlag)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	start, count := uint64(pageHeaderSize), uint64(ne.Uint16(p[10:]))
	if count == 0xFFFF {
		if len(p) < pageHeaderSize+8 {
			return damaged("freelist page %d is too short", id)
		}
		count, start = ne.Uint64(p[pageHeaderSize:]), pageHeaderSize+8
	}
	if count > (uint64(len(p))-start)/8 {
		return damaged("freelist page %d claims %d pages, more than it holds", id, count)
	}
	for i := uint64(0); i < count; i++ {
		free := ne.Uint64(p[start+8*i:])
		switch {
		case free < 2 || free >= v.hwm:
			return damaged("freelist page %d frees page %d, out of range [2, %d)", id, free, v.hwm)
		case v.freed[free]:
			return damaged("freelist page %d frees page %d twice", id, free)
		case v.seen[free]:
			return damaged("freelist page %d frees page %d, which is in use", id, free)
		}
		v.freed[free] = true
	}
	return nil
}

// maxDepth bounds bucket nesting and tree height, far above what bbolt writes.
const maxDepth = 64

// tree checks the B+tree of pages under id: every element within its page, every
// child page checked in turn, every bucket value's tree or inline page too.
func (v *verifier) tree(id uint64, depth int) error {
	if depth > maxDepth {
		return damaged("the tree under page %d is more than %d levels deep", id, maxDepth)
	}
	p, err := v.page(id, branchPageFlag, leafPageFlag)
	if err != nil {
		return err
	}
	return v.elements(p, id, depth)
}

// elements checks the elements of page p (id 0: an inline bucket's page).
func (v *verifier) elements(p []byte, id uint64, depth int) error {
	count := int(ne.Uint16(p[10:]))
	if pageHeaderSize+count*elementSize > len(p) {
		return damaged("page %d claims %d elements, more than it holds", id, count)
	}
	leaf := ne.Uint16(p[8:]) == leafPageFlag
	for i := range count {
		e := pageHeaderSize + i*elementSize
		if !leaf {
			pos, ksize := int(ne.Uint32(p[e:])), int(ne.Uint32(p[e+4:]))
			if e+pos+ksize > len(p) {
				return damaged("page %d: key %d runs past the page", id, i)
			}
			if err := v.tree(ne.Uint64(p[e+8:]), depth+1); err != nil {
				return err
			}
			continue
		}
		flags, pos := ne.Uint32(p[e:]), int(ne.Uint32(p[e+4:]))
		ksize, vsize := int(ne.Uint32(p[e+8:])), int(ne.Uint32(p[e+12:]))
		end := e + pos + ksize + vsize
		if pos < 0 || ksize < 0 || vsize < 0 || end > len(p) || end < e {
			return damaged("page %d: entry %d runs past the page", id, i)
		}
		if flags&bucketLeafFlag == 0 {
			continue
		}
		val := p[e+pos+ksize : end]
		if len(val) < bucketValueSize {
			return damaged("page %d: bucket %d has a %d-byte header", id, i, len(val))
		}
		if root := ne.Uint64(val); root != 0 {
			if err := v.tree(root, depth+1); err != nil {
				return err
			}
			continue
		}
		inline := val[bucketValueSize:]
		if len(inline) < pageHeaderSize || ne.Uint16(inline[8:]) != leafPageFlag {
			return damaged("page %d: bucket %d's inline page is damaged", id, i)
		}
		if depth > maxDepth {
			return damaged("buckets nested more than %d deep", maxDepth)
		}
		if err := v.elements(inline, id, depth+1); err != nil {
			return err
		}
	}
	return nil
}

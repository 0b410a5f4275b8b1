package soak

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path"
	"sort"
	"strings"
	"time"
)

// The bad-message corpus: fixed messages kept in testdata/corpus/json (the file name
// starts with the reason driftmon must give, e.g. "malformed-truncated.json"), and
// generated kinds that mutate valid events at random. Every one must be rejected,
// counted under its reason, and must change nothing else: TestCorpusIsRejected checks
// that against the monitor in-process.
//
//go:embed testdata/corpus
var corpusFS embed.FS

// badMessage is one message driftmon must reject, with the reason it must give.
type badMessage struct {
	kind   string
	reason string
	value  []byte
}

// seedCorpus is the fixed corpus, sorted by file name.
func seedCorpus() []badMessage {
	var out []badMessage
	err := fs.WalkDir(corpusFS, "testdata/corpus/json", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := corpusFS.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(path.Base(p), path.Ext(p))
		reason, _, _ := strings.Cut(name, "-")
		// Files end with a newline for editors; a message does not.
		out = append(out, badMessage{kind: "corpus:" + name, reason: reason, value: bytes.TrimSuffix(b, []byte("\n"))})
		return nil
	})
	if err != nil {
		panic("BUG: the embedded corpus does not read: " + err.Error())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].kind < out[j].kind })
	return out
}

// generated kinds: each makes a bad message from a valid event and random numbers.
var generated = []struct {
	kind, reason string
	make         func(r *rand.Rand, good []byte) []byte
}{
	{"truncated", "malformed", func(r *rand.Rand, good []byte) []byte {
		// A cut before the last byte leaves an object open.
		return good[:1+r.IntN(len(good)-2)]
	}},
	{"trailing-garbage", "malformed", func(r *rand.Rand, good []byte) []byte {
		return append(append([]byte(nil), good...), []byte(" }{"[r.IntN(3):])...)
	}},
	{"random-bytes", "malformed", func(r *rand.Rand, _ []byte) []byte {
		b := make([]byte, 1+r.IntN(200))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		b[0] = "\x00\xff#x!"[r.IntN(5)] // never a JSON value's first byte
		return b
	}},
	{"nan-token", "malformed", func(r *rand.Rand, good []byte) []byte {
		tok := []string{"NaN", "Infinity", "-Infinity", "nan", "inf"}[r.IntN(5)]
		return replaceValue(good, `"x":`, tok)
	}},
	{"invalid-utf8", "malformed", func(r *rand.Rand, good []byte) []byte {
		// Invalid UTF-8 where JSON's grammar wants a value: no decoder may take it.
		return replaceValue(good, `"age":`, string([]byte{0xff, 0xfe, byte(0x80 + r.IntN(64))}))
	}},
	{"wrong-type-number", "wrong_type", func(r *rand.Rand, good []byte) []byte {
		return replaceValue(good, `"x":`, []string{`"high"`, `{"v":1}`, `[1,2]`, `"12,5"`}[r.IntN(4)])
	}},
	{"wrong-type-category", "wrong_type", func(r *rand.Rand, good []byte) []byte {
		return replaceValue(good, `"segment":`, []string{`{"nested":true}`, `[1]`}[r.IntN(2)])
	}},
	// Deeper than the decoder's limit (512): rejected before any value is read.
	{"deep-nesting", "malformed", func(r *rand.Rand, good []byte) []byte {
		depth := 600 + r.IntN(5000)
		return replaceValue(good, `"x":`, strings.Repeat("[", depth)+"1"+strings.Repeat("]", depth))
	}},
	{"bad-time", "bad_time", func(r *rand.Rand, good []byte) []byte {
		return replaceValue(good, `"ts":`, []string{`"yesterday"`, `"2026-13-45T99:00:00Z"`, `{"t":1}`}[r.IntN(3)])
	}},
	// A producer whose clock is hours to a day fast, past limits.max_future's default
	// hour.
	{"clock-fast", "event_time_future", func(r *rand.Rand, good []byte) []byte {
		return replaceValue(good, `"ts":`, `"`+fastClock(r).Format(time.RFC3339Nano)+`"`)
	}},
	// A producer whose clock is a month slow: past the stream's limits.max_past.
	{"clock-slow", "event_time_past", func(r *rand.Rand, good []byte) []byte {
		return replaceValue(good, `"ts":`, `"`+slowClock(r).Format(time.RFC3339Nano)+`"`)
	}},
	// A request id in the model field: a new (model, version) pair per event, past the
	// JSON stream's limits.max_models (1: the churn model's pair, which the first valid
	// event admits).
	{"model-flood", "too_many_models", func(r *rand.Rand, good []byte) []byte {
		return replaceValue(good, `"model":`, fmt.Sprintf(`"req-%016x"`, r.Uint64()))
	}},
	{"huge", "too_large", func(r *rand.Rand, good []byte) []byte {
		pad := strings.Repeat("z", maxMessageBytes+r.IntN(maxMessageBytes/2))
		return replaceValue(good, `"channel":`, `"`+pad+`"`)
	}},
}

// replaceValue replaces the JSON value after key (a string value or a number) in
// an event with v.
func replaceValue(good []byte, key, v string) []byte {
	s := string(good)
	i := strings.Index(s, key)
	if i < 0 {
		panic("BUG: " + key + " not in " + s)
	}
	i += len(key)
	j := i
	if s[j] == '"' {
		j = i + 1 + strings.IndexByte(s[i+1:], '"') + 1
	} else {
		for j < len(s) && s[j] != ',' && s[j] != '}' {
			j++
		}
	}
	return []byte(s[:i] + v + s[j:])
}

// badMix makes the n-th bad message of a campaign: the fixed corpus in turn, mixed
// with generated kinds. Huge messages are one in hugeEvery of the generated ones, to
// keep the topic's size reasonable.
type badMix struct {
	seed   uint64
	corpus []badMessage
}

const hugeEvery = 500

func newBadMix(seed uint64) *badMix { return &badMix{seed: seed, corpus: seedCorpus()} }

func (b *badMix) message(n int64) badMessage {
	if n%10 == 0 { // one in ten from the fixed corpus
		return b.corpus[(n/10)%int64(len(b.corpus))]
	}
	r := rand.New(rand.NewPCG(b.seed^0xbad, uint64(n)))
	k := r.IntN(len(generated))
	if generated[k].kind == "huge" && r.IntN(hugeEvery/len(generated)+1) != 0 {
		k = (k + 1) % len(generated)
	}
	g := generated[k]
	return badMessage{kind: g.kind, reason: g.reason, value: g.make(r, goodEvent(b.seed, -1-n))}
}

func (m badMessage) String() string {
	return fmt.Sprintf("%s (%s, %d bytes)", m.kind, m.reason, len(m.value))
}

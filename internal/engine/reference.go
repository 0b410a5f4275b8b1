package engine

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/sketch"
)

// ProfileExt is the file extension of a reference profile written by `driftmon baseline`.
// A reference.baseline with this extension is loaded as a profile, anything else is read
// as a data file.
const ProfileExt = ".profile"

// IsProfilePath reports whether path names a profile file rather than a data file.
func IsProfilePath(path string) bool { return strings.EqualFold(filepath.Ext(path), ProfileExt) }

// ReadProfile reads a profile file: the bytes of sketch.Profile.MarshalBinary, which
// carry their own magic, version and checksum.
func ReadProfile(path string) (*sketch.Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read profile: %w", err)
	}
	var p sketch.Profile
	if err := p.UnmarshalBinary(data); err != nil {
		if errors.Is(err, sketch.ErrCorrupt) {
			return nil, fmt.Errorf("%s is not a valid driftmon profile (write one with `driftmon baseline`): %w", path, err)
		}
		return nil, fmt.Errorf("cannot read profile %s: %w", path, err)
	}
	return &p, nil
}

// WriteProfile writes p to path through a temporary file in the same directory, so a
// failed write never leaves a truncated reference behind.
func WriteProfile(path string, p *sketch.Profile) error {
	data, err := p.MarshalBinary()
	if err != nil {
		return fmt.Errorf("cannot encode profile: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("cannot write profile: %w", err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cannot write profile: %w", err)
	}
	return nil
}

// StreamFields returns the fields an engine for sc monitors (features, then
// predictions, each sorted by name) without loading its reference.
func StreamFields(sc *config.Stream) []sketch.Field {
	c := *sc
	c.Reference.Baseline = ""
	e, err := New(&c, nil)
	if err != nil {
		panic("BUG: an engine without a baseline cannot fail: " + err.Error())
	}
	return e.Fields()
}

// SegmentKeys are the sketch options' segment keys of a stream (streams[].segments):
// what a reference built for the stream must keep for its segments to be judged.
func SegmentKeys(sc *config.Stream) []sketch.SegmentKey {
	var keys []sketch.SegmentKey
	for _, g := range sc.Segments {
		keys = append(keys, sketch.SegmentKey{By: g.By, MaxValues: cmp.Or(g.MaxValues, config.DefaultSegmentMaxValues)})
	}
	return keys
}

// CheckReference reports every way ref's fields differ from fields: features the
// reference lacks, features it has that the stream does not, and features of another
// kind. Order does not matter; detectors find reference features by name. The error
// wraps ErrProfileFields.
func CheckReference(ref *sketch.Profile, fields []sketch.Field) error {
	var missing, extra, kinds []string
	want := make(map[string]sketch.Kind, len(fields))
	for _, f := range fields {
		want[f.Name] = f.Kind
		switch rf := ref.Feature(f.Name); {
		case rf == nil:
			missing = append(missing, f.Name)
		case rf.Kind != f.Kind:
			kinds = append(kinds, fmt.Sprintf("%s is %s in the profile, %s in the stream", f.Name, rf.Kind, f.Kind))
		}
	}
	for _, f := range ref.Features {
		if _, ok := want[f.Name]; !ok {
			extra = append(extra, f.Name)
		}
	}
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, "the profile has no feature "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		problems = append(problems, "the profile has features the stream does not monitor: "+strings.Join(extra, ", "))
	}
	problems = append(problems, kinds...)
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrProfileFields, strings.Join(problems, "; "))
	}
	return nil
}

// NewWithReference is New with ref, already built, as the reference of
// every model instead of sc.Reference (a backtest builds its reference from a file the
// config does not name). ref's fields must match the stream's; name describes it in
// results ("baseline train.csv (50,000 rows)" when empty).
func NewWithReference(sc *config.Stream, ref *sketch.Profile, name string, log *slog.Logger) (*Engine, error) {
	c := *sc
	c.Reference = config.Reference{}
	e, err := New(&c, log)
	if err != nil {
		return nil, err
	}
	if err := CheckReference(ref, e.fields); err != nil {
		return nil, err
	}
	if name == "" {
		name = fmt.Sprintf("reference (%s rows)", alerting.FormatCount(ref.Rows))
	}
	e.refs.baseline, e.refs.baselineName = ref, name
	return e, nil
}

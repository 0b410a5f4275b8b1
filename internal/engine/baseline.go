package engine

import (
	"fmt"

	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/sketch"
)

// loadBaseline returns the reference profile that path holds: a profile file (ProfileExt,
// written by `driftmon baseline`) whose fields must match the stream's, or a data file
// whose columns are named like the features, summarised here. Every feature must have a
// column: a reference without it would make every window look like 100% nulls.
func loadBaseline(path string, fields []sketch.Field, opts sketch.Options) (*sketch.Profile, error) {
	if IsProfilePath(path) {
		p, err := ReadProfile(path)
		if err != nil {
			return nil, err
		}
		if err := CheckReference(p, fields); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return p, nil
	}
	r, err := ingest.ReadFile(path, ingest.FileOptions{})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var missing []string
	for _, f := range fields {
		if len(r.Schema().FieldIndices(f.Name)) == 0 {
			missing = append(missing, f.Name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s has no column for %v", path, missing)
	}
	p := sketch.NewProfile(fields, opts)
	for r.Next() {
		p.Update(r.Record(), nil)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	return p, nil
}

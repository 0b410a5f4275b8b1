package monitor

import (
	"fmt"

	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/sketch"
)

// loadBaseline builds a reference profile from a data file whose columns are named like
// the features. Every feature must have a column: a reference without it would make
// every window look like 100% nulls.
func loadBaseline(path string, fields []sketch.Field, opts sketch.Options) (*sketch.Profile, error) {
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

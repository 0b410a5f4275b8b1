package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// setObjectiveDefaults fills in each objective's statistic and name, and the latency
// field when none is named.
func (s *Stream) setObjectiveDefaults() {
	for i := range s.Objectives {
		o := &s.Objectives[i]
		if o.Stat == "" {
			switch {
			case o.Quantile != 0:
				o.Stat = StatQuantile
			case o.Category != "":
				o.Stat = StatShare
			default:
				o.Stat = StatValue
			}
		}
		if o.Name == "" {
			o.Name = o.DefaultName()
		}
	}
	if s.LatencyField == "" {
		for _, o := range s.Objectives {
			if o.Stat == StatQuantile && strings.Contains(o.Field, "latency") {
				s.LatencyField = o.Field
				break
			}
		}
	}
}

// DefaultName is the name of an objective without one: its field and statistic, as
// a person says them ("latency_ms p99", "country share of DE", "rows per minute").
func (o Objective) DefaultName() string {
	stat := strings.ReplaceAll(o.Stat, "_", " ")
	switch o.Stat {
	case StatQuantile:
		// Rounded: 0.57·100 is 56.99999999999999 in floating point.
		stat = "p" + strconv.FormatFloat(math.Round(o.Quantile*1e6)/1e4, 'f', -1, 64)
	case StatShare:
		stat = "share of " + o.Category
	case StatRows, StatRowsPerMinute:
		return stat
	}
	return strings.TrimSpace(o.Field + " " + stat)
}

// validateObjectives appends the problems of the stream's objectives; p is the
// stream's path. Its defaults are set.
func (s *Stream) validateObjectives(p string, bad func(string, string, ...any)) {
	names := map[string]bool{}
	for i, o := range s.Objectives {
		op := fmt.Sprintf("%s.objectives[%d]", p, i)
		if names[o.Name] {
			bad(op+".name", "%q is used twice in the stream", o.Name)
		}
		names[o.Name] = true
		typ := ""
		if f, ok := s.Features[o.Field]; ok {
			typ = f.Type
		} else if f, ok := s.Predictions[o.Field]; ok {
			typ = f.Type
		}
		ofWindow := o.Stat == StatRows || o.Stat == StatRowsPerMinute
		switch {
		case ofWindow && o.Field != "":
			bad(op+".field", "%s is a statistic of the window, not of a field: remove field", o.Stat)
		case !ofWindow && o.Field == "":
			bad(op+".field", "is required with stat %s", o.Stat)
		case !ofWindow && typ == "":
			bad(op+".field", "%q is not a feature or prediction of the stream", o.Field)
		}
		numeric, categorical := typ == "numeric", typ == "categorical"
		switch o.Stat {
		case StatValue, StatQuantile, StatMean:
			if typ != "" && !numeric {
				bad(op+".stat", "%s needs a numeric field; %s is %s", o.Stat, o.Field, typ)
			}
		case StatDistinct, StatShare:
			if typ != "" && !categorical {
				bad(op+".stat", "%s needs a categorical field; %s is %s", o.Stat, o.Field, typ)
			}
		case StatNullShare, StatInvalidShare, StatRows:
		case StatRowsPerMinute:
			if s.Window.Rows > 0 {
				bad(op+".stat", "rows_per_minute needs event-time windows (window.size): a count window holds window.rows rows whatever the rate")
			}
		default:
			bad(op+".stat", "must be one of value, quantile, mean, null_share, invalid_share, distinct, share, rows, rows_per_minute, got %q", o.Stat)
		}
		if o.Stat == StatRows && s.Window.Rows > 0 {
			bad(op+".stat", "rows needs event-time windows (window.size): a count window always holds window.rows rows")
		}
		switch {
		case o.Stat == StatQuantile && !(o.Quantile > 0 && o.Quantile < 1):
			bad(op+".quantile", "must be between 0 and 1 (0.99 for p99), got %g", o.Quantile)
		case o.Stat != StatQuantile && o.Quantile != 0:
			bad(op+".quantile", "applies to stat quantile only")
		}
		switch {
		case o.Stat == StatShare && o.Category == "":
			bad(op+".category", "is required with stat share")
		case o.Stat != StatShare && o.Category != "":
			bad(op+".category", "applies to stat share only")
		}
		switch {
		case o.Min == nil && o.Max == nil:
			bad(op, "set min, max or both")
		case o.Min != nil && o.Max != nil && *o.Min > *o.Max:
			bad(op, "min %g is above max %g", *o.Min, *o.Max)
		}
		for _, b := range []struct {
			key string
			v   *float64
		}{{"min", o.Min}, {"max", o.Max}} {
			switch {
			case b.v == nil:
			case math.IsNaN(*b.v) || math.IsInf(*b.v, 0):
				bad(op+"."+b.key, "must be a finite number")
			case (o.Stat == StatNullShare || o.Stat == StatInvalidShare || o.Stat == StatShare) && (*b.v < 0 || *b.v > 1):
				bad(op+"."+b.key, "is a share, between 0 and 1, got %g", *b.v)
			case (o.Stat == StatRows || o.Stat == StatRowsPerMinute || o.Stat == StatDistinct) && *b.v < 0:
				bad(op+"."+b.key, "must not be negative, got %g", *b.v)
			}
		}
	}
	if f := s.LatencyField; f != "" {
		typ := ""
		if x, ok := s.Features[f]; ok {
			typ = x.Type
		} else if x, ok := s.Predictions[f]; ok {
			typ = x.Type
		}
		if typ != "numeric" {
			bad(p+".latency_field", "%q is not a numeric feature or prediction of the stream", f)
		}
	}
}

// validateObjectiveWebhooks checks that every objective a webhook names is an
// objective of some stream.
func (c *Config) validateObjectiveWebhooks(bad func(string, string, ...any)) {
	known := map[string]bool{}
	for _, s := range c.Streams {
		for _, o := range s.Objectives {
			known[o.Name] = true
		}
	}
	for i, w := range c.Alerting.Webhooks {
		for j, name := range w.Objectives {
			if !known[name] {
				bad(fmt.Sprintf("alerting.webhooks[%d].objectives[%d]", i, j), "%q is not the name of an objective of any stream", name)
			}
		}
	}
}

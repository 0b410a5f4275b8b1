package ingest

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// parseRFC3339Fast parses the form producers almost always write,
// "2006-01-02T15:04:05[.fraction]Z" or with a "±07:00" offset and a fraction of up to
// nine digits, within the years 1679..2260, by the same rules as time.Parse with
// time.RFC3339, without its general-purpose layout machinery. ok is false for anything
// else, which then goes through time.Parse.
func parseRFC3339Fast(s string) (ns int64, ok bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				ok = false
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	ok = true
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec := num(11, 2), num(14, 2), num(17, 2)
	if !ok || year < 1679 || year > 2260 || month < 1 || month > 12 || day < 1 ||
		day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	rest := s[19:]
	var nsec int64
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 {
			return 0, false
		}
		for i := 1; i < 10; i++ {
			nsec *= 10
			if i < n {
				nsec += int64(rest[i] - '0')
			}
		}
		rest = rest[n:]
	}
	var offset int
	switch {
	case rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		zh, zm := 0, 0
		for _, c := range []byte(rest[1:3] + rest[4:6]) {
			if c < '0' || c > '9' {
				return 0, false
			}
		}
		zh = int(rest[1]-'0')*10 + int(rest[2]-'0')
		zm = int(rest[4]-'0')*10 + int(rest[5]-'0')
		if zh > 23 || zm > 59 {
			return 0, false
		}
		offset = (zh*60 + zm) * 60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return 0, false
	}
	secs := daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+sec-offset)
	return secs*1e9 + nsec, true
}

// daysIn returns the number of days of month (1..12) in year.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days from 1970-01-01 to the given proleptic Gregorian date
// (year ≥ 1; Howard Hinnant's days_from_civil).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era*146097 + doe - 719468)
}

// parseTimeText parses an RFC 3339-like time ("2006-01-02", optionally followed by "T" or
// " ", the time of day, fractional seconds and a zone; no zone means UTC) or a unix time
// number given as text.
func parseTimeText(s string) (int64, bool) {
	if ns, ok := parseRFC3339Fast(s); ok {
		return ns, true
	}
	if len(s) >= 10 && s[4] == '-' {
		var layout string
		zone := len(s) > 10 && strings.ContainsAny(s[10:], "Zz+-")
		switch {
		case len(s) == 10:
			layout = "2006-01-02"
		case s[10] == 'T' && zone:
			layout = time.RFC3339 // also accepts fractional seconds
		case s[10] == 'T':
			layout = "2006-01-02T15:04:05"
		case s[10] == ' ' && zone:
			layout = "2006-01-02 15:04:05Z07:00"
		case s[10] == ' ':
			layout = "2006-01-02 15:04:05"
		default:
			return 0, false
		}
		t, err := time.Parse(layout, s)
		// int64 nanoseconds cover 1677-09-21 .. 2262-04-11.
		if y := t.Year(); err != nil || y < 1678 || y > 2261 {
			return 0, false
		}
		return t.UnixNano(), true
	}
	if !validNumber(unsafe.Slice(unsafe.StringData(s), len(s))) {
		return 0, false
	}
	return unixNanos(s)
}

// unixNanos converts a valid JSON number literal of unix time to nanoseconds, guessing
// the unit from the magnitude (see JSONDecoder). It works on the decimal digits, so
// fractions such as 1764064800.25 s are exact; digits below a nanosecond are truncated.
func unixNanos(lit string) (int64, bool) {
	neg := strings.HasPrefix(lit, "-")
	if neg {
		lit = lit[1:]
	}
	mant, exp := lit, 0
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		e, err := strconv.Atoi(lit[i+1:])
		switch {
		case err != nil || e > 1000:
			return 0, false
		case e < -1000:
			return 0, true // rounds to the epoch
		}
		mant, exp = lit[:i], e
	}
	// Significant digits d and exponent exp such that |v| = d × 10^exp.
	var buf [40]byte
	n, dot := 0, false
	for i := 0; i < len(mant); i++ {
		c := mant[i]
		switch {
		case c == '.':
			dot = true
		case n == 0 && c == '0':
			if dot {
				exp--
			}
		case n < len(buf):
			buf[n] = c
			n++
			if dot {
				exp--
			}
		case !dot:
			exp++ // digits beyond 40 significant ones are far below a nanosecond
		}
	}
	if n == 0 {
		return 0, true
	}
	var unit int // decimal exponent of the unit: seconds 9, ms 6, µs 3, ns 0
	switch intDigits := n + exp; {
	case intDigits <= 11: // |v| < 1e11
		unit = 9
	case intDigits <= 14:
		unit = 6
	case intDigits <= 17:
		unit = 3
	}
	d, p := buf[:n], exp+unit
	if p < 0 {
		if -p >= n {
			return 0, true
		}
		d, p = d[:n+p], 0
	}
	if len(d)+p > 19 {
		return 0, false
	}
	v, err := strconv.ParseUint(bytesString(d), 10, 64)
	if err != nil {
		return 0, false
	}
	for ; p > 0; p-- {
		v *= 10 // cannot overflow: at most 19 digits
	}
	switch {
	case !neg && v <= math.MaxInt64:
		return int64(v), true
	case neg && v <= 1<<63:
		return int64(-v), true
	}
	return 0, false
}

// unixNanosInt converts an integer unix time to nanoseconds with the JSON decoder's unit
// heuristic (|v| < 1e11 seconds, < 1e14 milliseconds, < 1e17 microseconds, otherwise
// nanoseconds).
func unixNanosInt(v int64) (int64, bool) {
	a := v
	if a < 0 {
		if a == math.MinInt64 {
			return v, true
		}
		a = -a
	}
	switch {
	case a < 1e11:
		return mulNanos(v, 1e9)
	case a < 1e14:
		return mulNanos(v, 1e6)
	case a < 1e17:
		return mulNanos(v, 1e3)
	}
	return v, true
}

// unixNanosUint is unixNanosInt for unsigned values.
func unixNanosUint(v uint64) (int64, bool) {
	if v > math.MaxInt64 {
		return 0, false
	}
	return unixNanosInt(int64(v))
}

// unixNanosFloat converts a unix time number to nanoseconds exactly as the JSON decoder
// converts the shortest decimal text of f.
func unixNanosFloat(f float64) (int64, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	var buf [32]byte
	return unixNanos(bytesString(strconv.AppendFloat(buf[:0], f, 'g', -1, 64)))
}

func mulNanos(v, scale int64) (int64, bool) {
	if v > 0 && v > (1<<63-1)/scale || v < 0 && v < -(1<<63)/scale {
		return 0, false
	}
	return v * scale, true
}

// arrowTime converts row i of arr, a valid value, into unix nanoseconds as the decoders
// read event times: timestamps (any unit; the zone does not matter), date32 and date64;
// integers and floats with the unit heuristic of unixNanos (floats through their
// shortest decimal form); strings as parseTimeText parses them. known is false for a
// type that holds no times.
func arrowTime(arr arrow.Array, i int) (ns int64, ok, known bool) {
	switch a := arr.(type) {
	case *array.Timestamp:
		ns, ok = mulNanos(int64(a.Value(i)), unitNanoseconds(a.DataType().(*arrow.TimestampType).Unit))
	case *array.Date32:
		ns, ok = mulNanos(int64(a.Value(i)), 86400e9)
	case *array.Date64:
		ns, ok = mulNanos(int64(a.Value(i)), 1e6)
	case *array.Int64:
		ns, ok = unixNanosInt(a.Value(i))
	case *array.Int32:
		ns, ok = unixNanosInt(int64(a.Value(i)))
	case *array.Int16:
		ns, ok = unixNanosInt(int64(a.Value(i)))
	case *array.Int8:
		ns, ok = unixNanosInt(int64(a.Value(i)))
	case *array.Uint64:
		ns, ok = unixNanosUint(a.Value(i))
	case *array.Uint32:
		ns, ok = unixNanosInt(int64(a.Value(i)))
	case *array.Uint16:
		ns, ok = unixNanosInt(int64(a.Value(i)))
	case *array.Uint8:
		ns, ok = unixNanosInt(int64(a.Value(i)))
	case *array.Float64:
		ns, ok = unixNanosFloat(a.Value(i))
	case *array.Float32:
		ns, ok = unixNanosFloat(float32Value(a.Value(i)))
	case *array.Float16:
		ns, ok = unixNanosFloat(float32Value(a.Value(i).Float32()))
	case *array.String:
		ns, ok = parseTimeText(a.Value(i))
	case *array.LargeString:
		ns, ok = parseTimeText(a.Value(i))
	case *array.StringView:
		ns, ok = parseTimeText(a.Value(i))
	default:
		return 0, false, false
	}
	return ns, ok, true
}

func unitNanoseconds(u arrow.TimeUnit) int64 {
	switch u {
	case arrow.Second:
		return 1e9
	case arrow.Millisecond:
		return 1e6
	case arrow.Microsecond:
		return 1e3
	}
	return 1
}

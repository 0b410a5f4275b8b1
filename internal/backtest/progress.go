package backtest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/parquet/file"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/detectors"
)

// EstimateRows says how many rows the data file at path holds: exactly for Parquet (from
// its footer), else estimated from the file's size and the length of its first lines.
// It returns 0 when it cannot tell.
func EstimateRows(path string) (rows int64, exact bool) {
	ext := strings.ToLower(filepath.Ext(path))
	if ext == ".parquet" || ext == ".pq" {
		pf, err := file.OpenParquetFile(path, false)
		if err != nil {
			return 0, false
		}
		defer pf.Close()
		return pf.NumRows(), true
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, false
	}
	buf := make([]byte, 256<<10)
	n, _ := io.ReadFull(f, buf)
	lines := bytes.Count(buf[:n], []byte{'\n'})
	if lines == 0 {
		return 0, false
	}
	if int64(n) == st.Size() {
		if ext == ".csv" {
			lines-- // the header
		}
		return int64(lines), true
	}
	return st.Size() * int64(lines) / int64(n), false
}

// Progress draws a one-line progress bar on a terminal: rows read, rows per second and
// the time left. It redraws at most every tenth of a second. A nil *Progress draws
// nothing, so callers can keep one unconditionally and leave it nil off a terminal.
type Progress struct {
	w     io.Writer
	label string
	total int64
	exact bool
	start time.Time
	last  time.Time
	rows  int64
	shown bool
	now   func() time.Time
}

// NewProgress returns a bar labelled label (e.g. "reading train.parquet") that expects
// total rows, exactly or as an estimate; total 0 means unknown.
func NewProgress(w io.Writer, label string, total int64, exact bool) *Progress {
	p := &Progress{w: w, label: label, total: total, exact: exact, now: time.Now}
	p.start = p.now()
	return p
}

// ProgressFor returns a bar for reading the data file at path, with its row count
// estimated by EstimateRows.
func ProgressFor(w io.Writer, path string) *Progress {
	total, exact := EstimateRows(path)
	return NewProgress(w, "reading "+filepath.Base(path), total, exact)
}

// Update records that rows rows have been read and redraws the bar if it is due.
func (p *Progress) Update(rows int64) {
	if p == nil {
		return
	}
	p.rows = rows
	now := p.now()
	if now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	p.draw(now)
}

// Clear erases the bar, e.g. before printing something else on the terminal; the next
// Update draws it again.
func (p *Progress) Clear() {
	if p != nil && p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
		p.last = time.Time{}
	}
}

// Done erases the bar and prints how many rows were read, and how fast.
func (p *Progress) Done() {
	if p == nil {
		return
	}
	p.Clear()
	d := p.now().Sub(p.start)
	fmt.Fprintf(p.w, "%s: %s rows in %s (%s rows/s)\n", p.label, alerting.FormatCount(p.rows), d.Round(10*time.Millisecond), rate(p.rows, d))
}

func rate(rows int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return detectors.Compact(float64(rows) / d.Seconds())
}

const barWidth = 30

func (p *Progress) draw(now time.Time) {
	elapsed := now.Sub(p.start)
	var b strings.Builder
	b.WriteString("\r\x1b[K")
	b.WriteString(p.label)
	total := p.total
	if total > 0 && p.rows > total {
		total = 0 // the estimate was wrong: show what is known
	}
	if total > 0 {
		share := float64(p.rows) / float64(total)
		if !p.exact {
			share = min(share, 0.99)
		}
		full := int(share * barWidth)
		fmt.Fprintf(&b, " [%s%s] %3.0f%%", strings.Repeat("=", full), strings.Repeat(" ", barWidth-full), share*100)
		about := ""
		if !p.exact {
			about = "~"
		}
		fmt.Fprintf(&b, "  %s/%s%s rows", alerting.FormatCount(p.rows), about, alerting.FormatCount(total))
	} else {
		fmt.Fprintf(&b, "  %s rows", alerting.FormatCount(p.rows))
	}
	fmt.Fprintf(&b, "  %s rows/s", rate(p.rows, elapsed))
	if total > 0 && p.rows > 0 && elapsed > 0 {
		left := time.Duration(float64(elapsed) * float64(total-p.rows) / float64(p.rows))
		fmt.Fprintf(&b, "  %s left", left.Round(time.Second))
	}
	fmt.Fprint(p.w, b.String())
	p.shown = true
}

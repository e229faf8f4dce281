package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// row is one line of a load generator CSV, by column name.
type row map[string]string

func (r row) str(col string) string { return r[col] }

func (r row) num(col string) (float64, error) {
	s, ok := r[col]
	if !ok {
		return 0, fmt.Errorf("no column %q", col)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("column %q: %w", col, err)
	}
	return v, nil
}

// point returns the numbers in columns x and y.
func (r row) point(x, y string) (float64, float64, error) {
	xv, err := r.num(x)
	if err != nil {
		return 0, 0, err
	}
	yv, err := r.num(y)
	return xv, yv, err
}

// readRows reads a CSV with a header row.
func readRows(r io.Reader) ([]row, error) {
	recs, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) < 2 {
		return nil, errors.New("no data rows")
	}
	header := recs[0]
	var rows []row
	for _, rec := range recs[1:] {
		rw := row{}
		for i, name := range header {
			if i < len(rec) {
				rw[name] = rec[i]
			}
		}
		rows = append(rows, rw)
	}
	return rows, nil
}

// chart builds the chart of the given kind.
func chart(kind string, rows []row, title string) (*plot.Plot, error) {
	switch kind {
	case "throughput":
		return throughputChart(rows, title)
	case "latency":
		return latencyChart(rows, title)
	case "cdf":
		return cdfChart(rows, title)
	}
	return nil, fmt.Errorf("unknown kind %q (throughput, latency or cdf)", kind)
}

// seriesSet collects named lines in the order they first appear.
type seriesSet struct {
	names []string
	pts   map[string]plotter.XYs
}

func (s *seriesSet) add(name string, x, y float64) {
	if s.pts == nil {
		s.pts = map[string]plotter.XYs{}
	}
	if _, ok := s.pts[name]; !ok {
		s.names = append(s.names, name)
	}
	s.pts[name] = append(s.pts[name], plotter.XY{X: x, Y: y})
}

// lines adds every series to p as a line with point markers, sorted by x.
func (s *seriesSet) lines(p *plot.Plot, markers bool) error {
	if len(s.names) == 0 {
		return errors.New("nothing to plot")
	}
	var args []any
	for _, n := range s.names {
		xys := s.pts[n]
		slices.SortFunc(xys, func(a, b plotter.XY) int {
			switch {
			case a.X < b.X:
				return -1
			case a.X > b.X:
				return 1
			}
			return 0
		})
		args = append(args, n, xys)
	}
	if markers {
		return plotutil.AddLinePoints(p, args...)
	}
	return plotutil.AddLines(p, args...)
}

func contention(r row) string {
	c, err := r.num("contention")
	if err != nil {
		return r.str("contention")
	}
	return strconv.FormatFloat(c, 'g', 2, 64)
}

// nodeTicks puts a tick at each node count measured.
type nodeTicks []float64

func (t nodeTicks) Ticks(min, max float64) []plot.Tick {
	var ticks []plot.Tick
	for _, v := range t {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	return ticks
}

func (t *nodeTicks) add(v float64) {
	if !slices.Contains(*t, v) {
		*t = append(*t, v)
		slices.Sort(*t)
	}
}

// thousands puts a thin space between groups of three digits: 120 000.
type thousands struct{}

func (thousands) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = group(ticks[i].Value)
		}
	}
	return ticks
}

func group(v float64) string {
	s := strconv.FormatFloat(v, 'f', 0, 64)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func throughputChart(rows []row, title string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = orDefault(title, "Throughput against nodes")
	p.X.Label.Text = "nodes"
	p.Y.Label.Text = "lock+unlock pairs/s"
	var s seriesSet
	var ticks nodeTicks
	for _, r := range rows {
		n, v, err := r.point("nodes", "locks_per_s")
		if err != nil {
			return nil, err
		}
		ticks.add(n)
		s.add(fmt.Sprintf("%s, contention %s", r.str("target"), contention(r)), n, v)
	}
	if err := s.lines(p, true); err != nil {
		return nil, err
	}
	p.X.Tick.Marker = ticks
	p.Y.Min = 0
	p.Y.Tick.Marker = thousands{}
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p, nil
}

func latencyChart(rows []row, title string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = orDefault(title, "Acquire latency against nodes")
	p.X.Label.Text = "nodes"
	p.Y.Label.Text = "acquire latency (log scale)"
	var s seriesSet
	var ticks nodeTicks
	for _, q := range []struct{ col, name string }{{"p50_us", "p50"}, {"p99_us", "p99"}, {"p999_us", "p99.9"}} {
		for _, r := range rows {
			n, v, err := r.point("nodes", q.col)
			if err != nil {
				return nil, err
			}
			if v <= 0 {
				continue
			}
			ticks.add(n)
			s.add(fmt.Sprintf("%s, %s, contention %s", q.name, r.str("target"), contention(r)), n, v)
		}
	}
	if err := s.lines(p, true); err != nil {
		return nil, err
	}
	p.X.Tick.Marker = ticks
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = durationTicks{upTo: p.Y.Max}
	// Room above the lines for the legend, on the log scale.
	p.Y.Max *= 500
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p, nil
}

func cdfChart(rows []row, title string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = orDefault(title, "Acquire latency, cumulative distribution")
	p.X.Label.Text = "acquire latency (log scale)"
	p.Y.Label.Text = "fraction of acquires"
	var s seriesSet
	for _, r := range rows {
		x, y, err := r.point("latency_us", "fraction")
		if err != nil {
			return nil, err
		}
		if x <= 0 {
			continue
		}
		s.add(fmt.Sprintf("%s, %s nodes, contention %s", r.str("target"), r.str("nodes"), contention(r)), x, y)
	}
	if err := s.lines(p, false); err != nil {
		return nil, err
	}
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = durationTicks{}
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Top = false
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	return p, nil
}

// durationTicks marks the powers of ten of a log axis in microseconds with
// their durations (100µs, 1ms, 10ms, 1s), labelled up to upTo if it is set.
type durationTicks struct{ upTo float64 }

func (d durationTicks) Ticks(min, max float64) []plot.Tick {
	var ticks []plot.Tick
	for v := math.Pow(10, math.Floor(math.Log10(min))); v <= max; v *= 10 {
		if v < min {
			continue
		}
		label := (time.Duration(v) * time.Microsecond).String()
		if d.upTo > 0 && v > d.upTo*10 {
			label = ""
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: label})
	}
	return ticks
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

func save(p *plot.Plot, widthCM, heightCM float64, file string) error {
	return p.Save(vg.Length(widthCM)*vg.Centimeter, vg.Length(heightCM)*vg.Centimeter, file)
}

package loadgen

import (
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
)

// The charts are SVG written by hand, so that the generator needs nothing
// outside the standard library.

// WriteThroughputChart writes an SVG line chart of locks/s against the
// number of nodes, one line per target and contention level.
func WriteThroughputChart(w io.Writer, results []*Result) error {
	bySeries := map[string][]point{}
	var names []string
	for _, r := range results {
		name := fmt.Sprintf("%s, contention %.2g", r.Target, r.Workload.Contention)
		if _, ok := bySeries[name]; !ok {
			names = append(names, name)
		}
		bySeries[name] = append(bySeries[name], point{float64(r.Nodes), r.LocksPerSec})
	}
	c := chart{title: "Throughput against nodes", xLabel: "nodes", yLabel: "lock+unlock pairs/s", yFromZero: true, xAtPoints: true}
	for _, n := range names {
		pts := bySeries[n]
		sort.Slice(pts, func(i, j int) bool { return pts[i].x < pts[j].x })
		c.series = append(c.series, series{name: n, points: pts, markers: true})
	}
	return c.write(w)
}

// WriteLatencyChart writes an SVG chart of the cumulative distribution of
// acquire latency, one line per run, with latency on a log scale.
func WriteLatencyChart(w io.Writer, results []*Result) error {
	c := chart{title: "Acquire latency, cumulative distribution", xLabel: "acquire latency (µs, log scale)", yLabel: "fraction of acquires", xLog: true}
	for _, r := range results {
		var pts []point
		for _, p := range r.Latency.CDF() {
			pts = append(pts, point{float64(p.Latency) / 1e3, p.Fraction})
		}
		if len(pts) == 0 {
			continue
		}
		name := fmt.Sprintf("%s, %d nodes, contention %.2g", r.Target, r.Nodes, r.Workload.Contention)
		c.series = append(c.series, series{name: name, points: pts})
	}
	return c.write(w)
}

type point struct{ x, y float64 }

type series struct {
	name    string
	points  []point
	markers bool
}

type chart struct {
	title, xLabel, yLabel string
	xLog                  bool // x on a log10 scale; x values must be positive
	xAtPoints             bool // x ticks at the points' x values (a few integers), from 0
	yFromZero             bool
	series                []series
}

// Layout of the chart, in SVG user units.
const (
	chartW, chartH             = 900, 520
	marginL, marginR           = 90, 30
	marginT, marginB           = 50, 70
	legendLineH, legendPadding = 18, 10
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"}

func (c chart) write(w io.Writer) error {
	var xs, ys []float64
	for _, s := range c.series {
		for _, p := range s.points {
			x := p.x
			if c.xLog {
				x = math.Log10(math.Max(p.x, 1e-3))
			}
			xs = append(xs, x)
			ys = append(ys, p.y)
		}
	}
	if len(xs) == 0 {
		xs, ys = []float64{0, 1}, []float64{0, 1}
	}
	xmin, xmax := minMax(xs)
	ymin, ymax := minMax(ys)
	if c.yFromZero {
		ymin = 0
		ymax *= 1.08 // room for the value labels above the markers
	}
	var xticks []float64
	if c.xLog {
		xmin, xmax = math.Floor(xmin), math.Ceil(xmax)
		if xmax == xmin {
			xmax++
		}
		for e := xmin; e <= xmax; e++ {
			xticks = append(xticks, e)
		}
	} else if c.xAtPoints {
		xticks = slices.Compact(slices.Sorted(slices.Values(xs)))
		xmin = 0
		if xmax <= xmin {
			xmax = xmin + 1
		}
	} else {
		xmin, xmax, xticks = niceTicks(xmin, xmax)
	}
	ymin, ymax, yticks := niceTicks(ymin, ymax)

	plotW := float64(chartW - marginL - marginR)
	plotH := float64(chartH - marginT - marginB)
	px := func(x float64) float64 {
		if c.xLog {
			x = math.Log10(math.Max(x, 1e-3))
		}
		return marginL + (x-xmin)/(xmax-xmin)*plotW
	}
	py := func(y float64) float64 { return marginT + plotH - (y-ymin)/(ymax-ymin)*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="13">`+"\n", chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="28" text-anchor="middle" font-size="17" font-weight="bold">%s</text>`+"\n", chartW/2, html.EscapeString(c.title))
	// Grid and tick labels.
	for _, t := range yticks {
		y := py(t)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", marginL, y, chartW-marginR, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", marginL-6, y, tickLabel(t))
	}
	for _, t := range xticks {
		x := marginL + (t-xmin)/(xmax-xmin)*plotW
		label := tickLabel(t)
		if c.xLog {
			label = tickLabel(math.Pow(10, t))
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x, marginT, x, marginT+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, marginT+plotH+18, label)
	}
	// Axes and their labels.
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#333"/>`+"\n", marginL, marginT, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", marginL+plotW/2, chartH-22, html.EscapeString(c.xLabel))
	fmt.Fprintf(&b, `<text transform="translate(22 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", marginT+plotH/2, html.EscapeString(c.yLabel))
	// Series.
	for i, s := range c.series {
		color := palette[i%len(palette)]
		var pts []string
		for _, p := range s.points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p.x), py(p.y)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		if s.markers {
			for _, p := range s.points {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"/>`+"\n", px(p.x), py(p.y), color)
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="11" fill="%s">%s</text>`+"\n", px(p.x), py(p.y)-8, color, tickLabel(p.y))
			}
		}
	}
	// Legend, top right inside the plot (throughput) or bottom right (CDF).
	lx, ly := marginL+plotW*0.62, float64(marginT+legendPadding)
	if c.xLog {
		lx = marginL + plotW*0.55
		ly = marginT + plotH - float64(len(c.series)*legendLineH) - legendPadding
	}
	for i, s := range c.series {
		y := ly + float64(i*legendLineH) + legendLineH/2
		color := palette[i%len(palette)]
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/>`+"\n", lx, y, lx+22, y, color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" dominant-baseline="middle">%s</text>`+"\n", lx+28, y, html.EscapeString(s.name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func minMax(v []float64) (lo, hi float64) {
	lo, hi = v[0], v[0]
	for _, x := range v[1:] {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return lo, hi
}

// niceTicks widens [lo, hi] to round numbers and returns about five ticks
// over it.
func niceTicks(lo, hi float64) (float64, float64, []float64) {
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	lo = math.Floor(lo/step) * step
	hi = math.Ceil(hi/step) * step
	var ticks []float64
	for t := lo; t <= hi+step/2; t += step {
		ticks = append(ticks, t)
	}
	return lo, hi, ticks
}

// tickLabel formats v briefly: 1.5k, 120k, 2M, 0.25.
func tickLabel(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return trimZeros(fmt.Sprintf("%.2f", v/1e6)) + "M"
	case a >= 1e3:
		return trimZeros(fmt.Sprintf("%.1f", v/1e3)) + "k"
	case a >= 1 || a == 0:
		return trimZeros(fmt.Sprintf("%.1f", v))
	default:
		return trimZeros(fmt.Sprintf("%.3f", v))
	}
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

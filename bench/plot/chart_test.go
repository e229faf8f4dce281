package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const nodesCSV = `target,nodes,concurrency,contention,hot,read,duration_s,pairs,locks_per_s,p50_us,p99_us,p999_us,max_us
dsync/http,1,256,0,16,0,10,1376500,137631.4,843.8,3178.5,5439.5,9229.7
dsync/http,4,256,0,16,0,10,1024593,102438.9,1196.0,3440.6,5963.8,10974.1
dsync/http,16,256,0,16,0,10,412903,41290.3,2981.9,6881.3,9830.4,14005.7
dsync/http,1,256,0.5,16,0,10,321626,32162.6,65.0,224395.3,515899.4,1798937.5
dsync/http,4,256,0.5,16,0,10,203708,20370.8,153.6,241172.5,595591.2,2063954.2
dsync/http,16,256,0.5,16,0,10,98127,9812.7,520.2,482345.0,947912.7,2107793.6
`

const cdfCSV = `target,nodes,concurrency,contention,latency_us,fraction
dsync/http,4,256,0,100,0.1
dsync/http,4,256,0,1000,0.5
dsync/http,4,256,0,5000,1
dsync/http,4,256,0.5,50,0.2
dsync/http,4,256,0.5,200000,1
`

// Every kind draws a chart from the load generator's CSV, as PNG and SVG.
func TestCharts(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ kind, csv string }{
		{"throughput", nodesCSV},
		{"latency", nodesCSV},
		{"cdf", cdfCSV},
	} {
		in := filepath.Join(dir, tc.kind+".csv")
		require.NoError(t, os.WriteFile(in, []byte(tc.csv), 0o644))
		for _, ext := range []string{".png", ".svg"} {
			out := filepath.Join(dir, tc.kind+ext)
			require.NoError(t, run(tc.kind, in, out, "", 16, 10), "%s%s", tc.kind, ext)
			b, err := os.ReadFile(out)
			require.NoError(t, err)
			switch ext {
			case ".png":
				img, err := png.Decode(bytes.NewReader(b))
				require.NoError(t, err, "%s: not a PNG", out)
				assert.GreaterOrEqual(t, img.Bounds().Dx(), 400, "%s: pixels wide", out)
			case ".svg":
				s := string(b)
				assert.Contains(t, s, "<svg", "%s is not an SVG", out)
				assert.NotContains(t, s, "NaN", "%s has NaN in it", out)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	rows, err := readRows(strings.NewReader(nodesCSV))
	require.NoError(t, err)
	_, err = chart("pie", rows, "")
	assert.Error(t, err, "an unknown kind drew a chart")
	_, err = chart("cdf", rows, "")
	assert.ErrorContains(t, err, "latency_us", "a CDF from a file without latency_us")
	_, err = readRows(strings.NewReader("target,nodes\n"))
	assert.Error(t, err, "a file without data rows was read")
}

func TestGroup(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 120069: "120,069", 1234567: "1,234,567"} {
		assert.Equal(t, want, group(v), "group(%v)", v)
	}
}

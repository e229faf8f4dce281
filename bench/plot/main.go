// Command dsync-plot draws the benchmark charts from the CSV files the load
// generator writes (bench/cmd/dsync-bench -csv and -cdf), with
// gonum.org/v1/plot.
//
// It is a module of its own, beside bench/compare, so that a program that
// embeds the library never downloads the plotting library: nothing in the root
// module imports it, and it imports nothing of the root module (it reads the
// CSV by its header names).
//
// Usage, from this directory:
//
//	go run . -kind throughput -in ../results/nodes-http.csv -out ../results/throughput-http.png
//	go run . -kind latency -in ../results/nodes-http.csv -out ../results/latency-nodes-http.png
//	go run . -kind cdf -in ../results/latency-http-cdf.csv -out ../results/latency-http.png
//
// The kinds:
//
//   - throughput: lock+unlock pairs/s against the number of nodes, one line
//     per target and contention level (columns target, nodes, contention,
//     locks_per_s);
//   - latency: acquire latency p50, p99 and p99.9 against the number of
//     nodes, on a log scale, one line per quantile and contention level
//     (p50_us, p99_us, p999_us);
//   - cdf: the cumulative distribution of acquire latency, one line per run
//     (the file dsync-bench -cdf writes: target, nodes, contention,
//     latency_us, fraction).
//
// The output's format follows its extension: .png, .svg or .pdf.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	var (
		kind   = flag.String("kind", "throughput", "chart to draw: throughput, latency or cdf")
		in     = flag.String("in", "", "CSV file written by dsync-bench (-csv, or -cdf for -kind cdf)")
		out    = flag.String("out", "", "chart file to write (.png, .svg or .pdf)")
		title  = flag.String("title", "", "chart title (a default per kind if empty)")
		width  = flag.Float64("width", 16, "width in centimetres")
		height = flag.Float64("height", 10, "height in centimetres")
	)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: dsync-plot -kind throughput|latency|cdf -in FILE.csv -out FILE.png\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *in == "" || *out == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*kind, *in, *out, *title, *width, *height); err != nil {
		fmt.Fprintln(os.Stderr, "dsync-plot:", err)
		os.Exit(1)
	}
}

func run(kind, in, out, title string, width, height float64) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	rows, err := readRows(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	p, err := chart(kind, rows, title)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := save(p, width, height, out); err != nil {
		return err
	}
	fmt.Println("wrote", out)
	return nil
}

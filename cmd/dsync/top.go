package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dsync-go/dsync/internal/term"

	"github.com/dsync-go/dsync/locker"
)

// top shows, like mc admin top locks, the locks held longest and those
// with the most waiters, again every interval until interrupted (or once).
// Waiters are the holders that the nodes record as waiting for a resource:
// acquisitions that named a holder (dsync.WithHolder) and were refused;
// anonymous acquisitions wait unseen.
func top(ctx context.Context, lockers []locker.NetLocker, of func(resource string) int, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("top", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 10, "rows in each table")
	interval := fs.Duration("interval", 2*time.Second, "time between refreshes")
	once := fs.Bool("once", false, "print one frame and exit")
	asJSON := fs.Bool("json", false, "print each frame as one line of JSON instead of tables")
	if err := parseCommand(fs, args, getenv, "usage: dsync top [-n N] [-interval D] [-once] [-json]\n\nShows the oldest and the most contended locks, refreshed every interval (needs the admin role).\n"); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return &exitError{exitUsage, fmt.Errorf("top: unexpected arguments %q", fs.Args())}
	case *n <= 0:
		return &exitError{exitUsage, fmt.Errorf("top: -n %d: want at least 1", *n)}
	case *interval <= 0:
		return &exitError{exitUsage, fmt.Errorf("top: -interval %v: want a positive duration", *interval)}
	}
	live := !*once && !*asJSON && term.IsTerminal(stdout)
	for {
		f, err := takeFrame(ctx, lockers, of, *n)
		if err != nil {
			return err
		}
		if *asJSON {
			err = writeJSON(stdout, f)
		} else {
			if live {
				fmt.Fprint(stdout, "\x1b[H\x1b[2J") // home, clear
			}
			err = f.print(stdout, *interval, *once)
		}
		if err != nil || *once {
			if err == nil && f.Answered < f.Nodes {
				return &exitError{exitFailed, fmt.Errorf("top: %d of %d nodes did not answer", f.Nodes-f.Answered, f.Nodes)}
			}
			return err
		}
		t := time.NewTimer(*interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil // interrupted: the operator is done
		case <-t.C:
		}
	}
}

// frame is one refresh of top.
type frame struct {
	Time      time.Time       `json:"time"`
	Nodes     int             `json:"nodes"`
	Answered  int             `json:"answered"`
	Held      int             `json:"held"`
	Waiting   int             `json:"waiting"`
	Oldest    []holderJSON    `json:"oldest"`
	Contended []contendedJSON `json:"contended"`
}

// contendedJSON is a resource that holders wait for.
type contendedJSON struct {
	Resource string       `json:"resource"`
	Waiters  int          `json:"waiters"`
	Holders  []holderJSON `json:"holders"`
}

// takeFrame reads the nodes' holders and waits, and keeps the n oldest
// holders and the n resources with the most waiters.
func takeFrame(ctx context.Context, lockers []locker.NetLocker, of func(resource string) int, n int) (*frame, error) {
	f := &frame{Time: time.Now().UTC(), Nodes: len(lockers)}
	list, failed, err := gather(ctx, lockers, of, 0, io.Discard)
	if err != nil {
		return nil, err
	}
	f.Answered = len(lockers) - failed
	f.Held = len(list)
	slices.SortFunc(list, func(a, b *holder) int {
		if c := cmp.Compare(b.HeldFor, a.HeldFor); c != 0 {
			return c
		}
		return strings.Compare(a.Resource, b.Resource)
	})
	f.Oldest = holdersJSON(list[:min(n, len(list))])

	byResource := map[string][]*holder{}
	for _, h := range list {
		byResource[h.Resource] = append(byResource[h.Resource], h)
	}
	waiters := map[string]map[string]bool{} // resource -> waiters
	for _, l := range lockers {
		w, ok := l.(locker.WaitReporter)
		if !ok {
			continue
		}
		r, err := w.Waits(ctx, locker.WaitsArgs{})
		if err != nil {
			continue // counted as unanswered by the listing, if it is down
		}
		for _, e := range r.Edges {
			if waiters[e.Resource] == nil {
				waiters[e.Resource] = map[string]bool{}
			}
			waiters[e.Resource][e.Waiter] = true
		}
	}
	for res, ws := range waiters {
		f.Waiting += len(ws)
		f.Contended = append(f.Contended, contendedJSON{Resource: res, Waiters: len(ws), Holders: holdersJSON(byResource[res])})
	}
	slices.SortFunc(f.Contended, func(a, b contendedJSON) int {
		if a.Waiters != b.Waiters {
			return b.Waiters - a.Waiters
		}
		return strings.Compare(a.Resource, b.Resource)
	})
	f.Contended = f.Contended[:min(n, len(f.Contended))]
	return f, nil
}

// print writes f as two tables.
func (f *frame) print(w io.Writer, interval time.Duration, once bool) error {
	every := fmt.Sprintf("every %v; Ctrl-C to quit", interval)
	if once {
		every = "once"
	}
	fmt.Fprintf(w, "dsync top  %s  nodes %d/%d answered  locks held %d  waiting %d  (%s)\n\n",
		f.Time.Format(time.TimeOnly), f.Answered, f.Nodes, f.Held, f.Waiting, every)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OLDEST\tMODE\tNODES\tHELD\tOWNER\tSOURCE\tHOLDER")
	for _, h := range f.Oldest {
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%v\t%s\t%s\t%s\n", printable(h.Resource), h.Mode, h.Nodes, h.Of,
			time.Duration(h.HeldForSeconds*float64(time.Second)).Round(time.Millisecond), printable(h.Owner), printable(h.Source), printable(h.Holder))
	}
	fmt.Fprintln(tw, "\t\t\t\t\t\t")
	fmt.Fprintln(tw, "MOST CONTENDED\tWAITERS\tMODE\tHELD\tHOLDER\t\t")
	for _, c := range f.Contended {
		mode, held, by := "-", "-", "-"
		if len(c.Holders) > 0 {
			h := c.Holders[0]
			mode, by = h.Mode, printable(h.Holder)
			held = time.Duration(h.HeldForSeconds * float64(time.Second)).Round(time.Millisecond).String()
			if len(c.Holders) > 1 {
				by += fmt.Sprintf(" (+%d)", len(c.Holders)-1)
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t\t\n", printable(c.Resource), c.Waiters, mode, held, by)
	}
	return tw.Flush()
}

// holderJSON is a holder as the JSON listings show it. Names are as the
// nodes hold them (JSON escapes what a terminal would act on).
type holderJSON struct {
	Resource       string  `json:"resource"`
	Mode           string  `json:"mode"`
	Nodes          int     `json:"nodes"`
	Of             int     `json:"of"`
	HeldForSeconds float64 `json:"held_for_seconds"`
	Owner          string  `json:"owner"`
	Source         string  `json:"source"`
	Holder         string  `json:"holder"`
	UID            string  `json:"uid"`
	Quorum         int     `json:"quorum"`
	Fence          uint64  `json:"fence"`
}

func holdersJSON(list []*holder) []holderJSON {
	out := make([]holderJSON, 0, len(list))
	for _, h := range list {
		out = append(out, holderJSON{
			Resource: h.Resource, Mode: h.mode(), Nodes: h.nodes, Of: h.of,
			HeldForSeconds: time.Duration(h.HeldFor).Seconds(),
			Owner:          h.Owner, Source: h.Source, Holder: h.Holder, UID: h.UID, Quorum: h.Quorum, Fence: h.Fence,
		})
	}
	return out
}

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

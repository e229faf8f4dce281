package main

import (
	"fmt"
	"io"
	"time"

	"github.com/dsync-go/dsync/internal/term"
)

// progress shows how far the runs are on w: on a terminal, one line
// rewritten in place at most every tick; elsewhere (a log, a CI job), a
// line of its own at most every quiet, so that a nightly run's log stays
// small.
type progress struct {
	w        io.Writer
	terminal bool
	last     time.Time // of the last line shown
}

// The intervals between two progress lines, on a terminal and elsewhere.
const (
	progressTick  = 100 * time.Millisecond
	progressQuiet = 30 * time.Second
)

// newProgress returns the progress of runs shown on w.
func newProgress(w io.Writer) *progress {
	return &progress{w: w, terminal: term.IsTerminal(w)}
}

// show shows the progress of scenario name: done of seeds runs, bad of
// them unexpected, since start. A scenario's last run is always shown.
// Calls must not overlap.
func (p *progress) show(name string, done, seeds, bad int, start time.Time) {
	now := time.Now()
	every := progressQuiet
	if p.terminal {
		every = progressTick
	}
	if done < seeds && now.Sub(p.last) < every {
		return
	}
	p.last = now
	line := fmt.Sprintf("%-28s %4d/%-4d runs  %d unexpected  %v", name, done, seeds, bad, time.Since(start).Round(time.Second))
	if p.terminal {
		fmt.Fprintf(p.w, "\r%s   ", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

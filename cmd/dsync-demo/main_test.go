package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestDemoRuns(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), config{nodes: 3, clients: 3, rounds: 3, crash: -1, hold: time.Millisecond}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"started 3 nodes", "crashed 1 of 3 nodes", "value 9 after 9 locked increments, 0 overlapping", "OK:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDemoRejectsBadFlags(t *testing.T) {
	if err := run(context.Background(), config{nodes: 0, clients: 1, rounds: 1}, &bytes.Buffer{}); err == nil {
		t.Fatal("accepted -nodes 0")
	}
}

package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"reflect"
	"testing"
	"time"
)

// withTestingT calls f with a *testing.T, which testing/synctest.Test needs
// to run a bubble, outside of go test: it starts the testing package's own
// runner (testing.MainStart) with one test whose body is f, and reports
// whether f returned without the test failing. Go 1.26 removed
// synctest.Run, the bubble that needed no T; this is the way left to run
// the simulation with exact quiescence in a command.
//
// The runner's flags (-test.*) are registered on flag.CommandLine and left
// at their defaults (the command parses its own flags on a FlagSet of its
// own); its "PASS" or "FAIL" line goes to the discarded os.Stdout it sees,
// not to the command's output. It may be called once per process.
func withTestingT(f func(t *testing.T)) bool {
	m := testing.MainStart(testDeps{}, []testing.InternalTest{{Name: "dsync-sim", F: f}}, nil, nil, nil)
	if err := flag.CommandLine.Parse(nil); err != nil {
		panic(err)
	}
	stdout := os.Stdout
	if null, err := os.Open(os.DevNull); err == nil {
		os.Stdout = null
		defer func() {
			os.Stdout = stdout
			null.Close()
		}()
	}
	return m.Run() == 0
}

// testDeps implements the interface that testing.MainStart takes (the
// unexported testing.testDeps; testing/internal/testdeps is the go
// command's, and internal): matching of -test.run, and nothing of
// profiles, coverage or fuzzing, which the command does not use.
type testDeps struct{}

// corpusEntry is the type testing's interface names in its fuzzing
// methods, an alias of this unnamed struct type.
type corpusEntry = struct {
	Parent     string
	Path       string
	Data       []byte
	Values     []any
	Generation int
	IsSeed     bool
}

var errNoFuzzing = errors.New("dsync-sim: no fuzzing")

func (testDeps) ImportPath() string                          { return "github.com/dsync-go/dsync/simulation/cmd/dsync-sim" }
func (testDeps) ModulePath() string                          { return "github.com/dsync-go/dsync" }
func (testDeps) MatchString(pat, str string) (bool, error)   { return true, nil }
func (testDeps) SetPanicOnExit0(bool)                        {}
func (testDeps) StartCPUProfile(io.Writer) error             { return nil }
func (testDeps) StopCPUProfile()                             {}
func (testDeps) StartTestLog(io.Writer)                      {}
func (testDeps) StopTestLog() error                          { return nil }
func (testDeps) WriteProfileTo(string, io.Writer, int) error { return nil }
func (testDeps) CoordinateFuzzing(time.Duration, int64, time.Duration, int64, int, []corpusEntry, []reflect.Type, string, string) error {
	return errNoFuzzing
}
func (testDeps) RunFuzzWorker(func(corpusEntry) error) error { return errNoFuzzing }
func (testDeps) ReadCorpus(string, []reflect.Type) ([]corpusEntry, error) {
	return nil, nil
}
func (testDeps) CheckCorpus([]any, []reflect.Type) error { return nil }
func (testDeps) ResetCoverage()                          {}
func (testDeps) SnapshotCoverage()                       {}
func (testDeps) InitRuntimeCoverage() (string, func(string, string) (string, error), func() float64) {
	return "", nil, nil
}

// Package buildinfo says which build a program is: its module version and
// the VCS revision it was built from, as the Go toolchain recorded them
// (runtime/debug.ReadBuildInfo), for -version flags and logs.
package buildinfo

import (
	"fmt"
	"runtime/debug"
)

// Line returns the program's name, its module version and the VCS
// revision it was built from, as the Go toolchain recorded them.
func Line(name string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return name + " (no build information)"
	}
	s := name + " " + bi.Main.Version
	var rev, when, modified string
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.time":
			when = kv.Value
		case "vcs.modified":
			if kv.Value == "true" {
				modified = ", modified"
			}
		}
	}
	if rev != "" {
		s += fmt.Sprintf(" (revision %s, %s%s)", rev, when, modified)
	}
	return s + " " + bi.GoVersion
}

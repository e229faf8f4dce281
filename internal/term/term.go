// Package term tells the programs whether they write to a terminal, where
// a line can be rewritten in place (dsync top, dsync-sim's progress).
package term

import (
	"io"
	"os"
)

// IsTerminal reports whether w is a character device: a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

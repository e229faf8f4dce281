// Package envflag lets every flag of a command be set from the
// environment, as operators of MinIO, etcd and Consul expect: a flag
// -tls-cert of a command whose prefix is DSYNC_ reads DSYNC_TLS_CERT when
// it is not given on the command line. The command line wins; an empty
// variable counts as unset.
package envflag

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Name returns the environment variable of the flag name: prefix, then
// name in upper case with '-' as '_'.
func Name(prefix, name string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Apply sets every flag of fs that the command line did not set from its
// environment variable, if that is not empty, and returns the names of
// the flags so set. Flags named in skip have no variable: those that make
// a command do something else than its work (-version, -check), which a
// variable left in an environment must not turn on. fs must have been
// parsed. An invalid value is an error that names the variable.
func Apply(fs *flag.FlagSet, prefix string, getenv func(string) string, skip ...string) (map[string]bool, error) {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	fromEnv := map[string]bool{}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] || slices.Contains(skip, f.Name) {
			return
		}
		env := Name(prefix, f.Name)
		v := getenv(env)
		if v == "" {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("$%s=%q: %w", env, v, serr)
			return
		}
		fromEnv[f.Name] = true
	})
	return fromEnv, err
}

// PrintDefaults writes fs's flags to w as flag.PrintDefaults does, with
// each flag's environment variable after its description (none for the
// flags in skip, as for Apply). Secrets' values are never shown: no flag's
// default here is one.
func PrintDefaults(w io.Writer, fs *flag.FlagSet, prefix string, skip ...string) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  -" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintln(w, line)
		usage = strings.ReplaceAll(usage, "\n", "\n    \t")
		fmt.Fprintf(w, "    \t%s\n", usage)
		def := f.DefValue
		var extra []string
		if def != "" && def != "false" && def != "0" && def != "0s" {
			extra = append(extra, "default "+quoteIfString(f, def))
		}
		if !slices.Contains(skip, f.Name) {
			extra = append(extra, "env "+Name(prefix, f.Name))
		}
		if len(extra) > 0 {
			fmt.Fprintf(w, "    \t(%s)\n", strings.Join(extra, "; "))
		}
	})
}

func quoteIfString(f *flag.Flag, def string) string {
	if _, ok := f.Value.(interface{ IsBoolFlag() bool }); ok {
		return def
	}
	if strings.ContainsAny(def, " \t") || def == "" {
		return fmt.Sprintf("%q", def)
	}
	return def
}

// ReadSecret returns the secret in file (a -secret-file flag): its content
// without one trailing newline. A secret in a file stays out of the
// process list and the environment, where Docker and Kubernetes secrets
// are mounted as files.
func ReadSecret(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	s := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}

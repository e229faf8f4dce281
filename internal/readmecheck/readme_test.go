package readmecheck

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// snippet is one ```go block of the README.
type snippet struct {
	name string // from its first line, "// Command NAME ..."
	line int    // where the block starts in README.md
	src  string
}

var commandLine = regexp.MustCompile(`^// Command ([a-z][a-z0-9-]*) `)

// readmeSnippets returns the README's Go blocks. Each must be a complete
// program whose first line names it: "// Command NAME does ...".
func readmeSnippets(t *testing.T, readme string) []snippet {
	t.Helper()
	var out []snippet
	var cur *snippet
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(readme))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```go":
			cur = &snippet{line: n}
			b.Reset()
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.src = b.String()
			m := commandLine.FindStringSubmatch(cur.src)
			require.NotNil(t, m, "README.md:%d: a Go block must start with \"// Command NAME ...\" and be a whole program", cur.line)
			cur.name = m[1]
			require.Contains(t, cur.src, "\npackage main\n", "README.md:%d: the Go block %q is not package main", cur.line, cur.name)
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	require.Nil(t, cur, "README.md: unterminated Go block")
	return out
}

func goTool(t *testing.T) string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			t.Skip("no go command to build the README's programs with")
		}
	}
	return goBin
}

// TestReadmeSnippets builds and vets every Go program of the README in a
// new module that depends on this one by a replace directive, then runs the
// README's try-it: three nodes and a client that takes a lock through them.
func TestReadmeSnippets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds programs and starts processes")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(readme), "replace github.com/dsync-go/dsync =>"),
		"README.md does not show the replace directive that depends on an unpublished module")
	snippets := readmeSnippets(t, string(readme))
	require.NotEmpty(t, snippets, "README.md has no Go block")

	mod := t.TempDir()
	goMod := fmt.Sprintf("module example.com/readme\n\ngo 1.26\n\nrequire github.com/dsync-go/dsync v0.0.0\n\nreplace github.com/dsync-go/dsync => %s\n", root)
	write(t, filepath.Join(mod, "go.mod"), goMod)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	require.NoError(t, err)
	write(t, filepath.Join(mod, "go.sum"), string(sum))
	seen := map[string]int{}
	for _, s := range snippets {
		first, dup := seen[s.name]
		require.False(t, dup, "README.md:%d and :%d both name a command %q", first, s.line, s.name)
		seen[s.name] = s.line
		write(t, filepath.Join(mod, s.name, "main.go"), s.src)
	}

	goBin := goTool(t)
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	gocmd := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir, cmd.Env = mod, env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %s in the README's module:\n%s\n(the blocks start at README.md lines %v)", strings.Join(args, " "), out, seen)
	}
	gocmd("mod", "tidy")
	gocmd("vet", "./...")
	bin := filepath.Join(mod, "bin")
	gocmd("build", "-o", bin+string(filepath.Separator), "./...")

	require.Contains(t, seen, "node", "README.md must have a \"node\" program")
	require.Contains(t, seen, "client", "README.md must have a \"client\" program")
	if runtime.GOOS == "windows" {
		t.Skip("the try-it stops its nodes with an interrupt")
	}
	tryIt(t, bin)
}

// tryIt does what the README's try-it does: three nodes, each with its own
// state directory, and the client, with one secret.
func tryIt(t *testing.T, bin string) {
	secret := make([]byte, 32)
	rand.Read(secret)
	env := append(os.Environ(), "DSYNC_SECRET="+hex.EncodeToString(secret))
	state := t.TempDir()
	var endpoints []string
	for i := range 3 {
		cmd := exec.Command(filepath.Join(bin, "node"), "-listen", "127.0.0.1:0", "-state-dir", filepath.Join(state, fmt.Sprint(i)))
		cmd.Env = env
		stderr, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		exited := make(chan error, 1)
		addr := make(chan string, 1)
		var logged strings.Builder
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				logged.WriteString(sc.Text() + "\n")
				if _, a, ok := strings.Cut(sc.Text(), "serving locks on "); ok {
					addr <- a
				}
			}
			exited <- cmd.Wait()
		}()
		t.Cleanup(func() {
			cmd.Process.Signal(os.Interrupt)
			select {
			case err := <-exited:
				assert.NoError(t, err, "node %d after an interrupt:\n%s", i, logged.String())
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				assert.Fail(t, "a node did not stop within 30 s of an interrupt", "node %d", i)
			}
		})
		select {
		case a := <-addr:
			endpoints = append(endpoints, "http://"+a)
		case err := <-exited:
			require.Fail(t, "a node exited", "node %d: %v", i, err)
		case <-time.After(30 * time.Second):
			require.Fail(t, "a node did not say where it serves within 30 s", "node %d", i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := exec.CommandContext(ctx, filepath.Join(bin, "client"))
	client.Env = append(env, "DSYNC_NODES="+strings.Join(endpoints, ","))
	out, err := client.CombinedOutput()
	require.NoError(t, err, "the README's client against its three nodes:\n%s", out)
	assert.Equal(t, "holding bucket/object (write quorum 2 of 3)\nreleased\n", string(out), "the README's client's output")
}

func write(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

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
			if m == nil {
				t.Fatalf("README.md:%d: a Go block must start with \"// Command NAME ...\" and be a whole program", cur.line)
			}
			cur.name = m[1]
			if !strings.Contains(cur.src, "\npackage main\n") {
				t.Fatalf("README.md:%d: the Go block %q is not package main", cur.line, cur.name)
			}
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	if cur != nil {
		t.Fatalf("README.md:%d: unterminated Go block", cur.line)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "replace github.com/dsync-go/dsync =>") {
		t.Error("README.md does not show the replace directive that depends on an unpublished module")
	}
	snippets := readmeSnippets(t, string(readme))
	if len(snippets) == 0 {
		t.Fatal("README.md has no Go block")
	}

	mod := t.TempDir()
	goMod := fmt.Sprintf("module example.com/readme\n\ngo 1.26\n\nrequire github.com/dsync-go/dsync v0.0.0\n\nreplace github.com/dsync-go/dsync => %s\n", root)
	write(t, filepath.Join(mod, "go.mod"), goMod)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(mod, "go.sum"), string(sum))
	seen := map[string]int{}
	for _, s := range snippets {
		if first, dup := seen[s.name]; dup {
			t.Fatalf("README.md:%d and :%d both name a command %q", first, s.line, s.name)
		}
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
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s in the README's module: %v\n%s\n(the blocks start at README.md lines %v)", strings.Join(args, " "), err, out, seen)
		}
	}
	gocmd("mod", "tidy")
	gocmd("vet", "./...")
	bin := filepath.Join(mod, "bin")
	gocmd("build", "-o", bin+string(filepath.Separator), "./...")

	if seen["node"] == 0 || seen["client"] == 0 {
		t.Fatalf("README.md must have a \"node\" and a \"client\" program (it has %v)", seen)
	}
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
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
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
				if err != nil {
					t.Errorf("node %d after an interrupt: %v\n%s", i, err, logged.String())
				}
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Errorf("node %d did not stop within 30 s of an interrupt", i)
			}
		})
		select {
		case a := <-addr:
			endpoints = append(endpoints, "http://"+a)
		case err := <-exited:
			t.Fatalf("node %d exited: %v", i, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("node %d did not say where it serves within 30 s", i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := exec.CommandContext(ctx, filepath.Join(bin, "client"))
	client.Env = append(env, "DSYNC_NODES="+strings.Join(endpoints, ","))
	out, err := client.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's client against its three nodes: %v\n%s", err, out)
	}
	want := "holding bucket/object (write quorum 2 of 3)\nreleased\n"
	if string(out) != want {
		t.Errorf("the README's client printed\n%s\nwant\n%s", out, want)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

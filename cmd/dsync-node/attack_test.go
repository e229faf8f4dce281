package main

// The attack suite: what an attacker on the storage network tried against
// dsync-node, reproduced against a real node process, each with the outcome
// the node must now give. See the README's "Security" section, and the
// module's docs/security.md for the table of attacks and outcomes.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

const (
	attackSecret = "attack-suite-secret-0123456789abcdef"
	attackAdmin  = "attack-suite-admin-0123456789abcdef"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds dsync-node and dsync once for the suite.
func binaries(t *testing.T) (node, cli string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds binaries and runs node processes")
	}
	buildOnce.Do(func() {
		if dir := os.Getenv("DSYNC_TEST_BIN_DIR"); dir != "" {
			// Binaries built as the Dockerfile builds them (deploy/build.sh; CI).
			binDir = dir
			return
		}
		binDir, buildErr = os.MkdirTemp("", "dsync-attack-")
		if buildErr != nil {
			return
		}
		for _, pkg := range []string{".", "../dsync"} {
			out := filepath.Join(binDir, filepath.Base(map[string]string{".": "dsync-node", "../dsync": "dsync"}[pkg]))
			if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
				return
			}
		}
	})
	require.NoError(t, buildErr)
	return filepath.Join(binDir, "dsync-node"), filepath.Join(binDir, "dsync")
}

// nodeProc is a dsync-node process.
type nodeProc struct {
	cmd      *exec.Cmd
	endpoint string
	line     string        // its first line
	output   *lockedBuffer // its standard output and error, after the first line
	copied   chan struct{} // closed once its standard output is read to the end
}

// wait waits for the process to exit, and returns what cmd.Wait says.
func (p *nodeProc) wait() error {
	<-p.copied
	return p.cmd.Wait()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

// startNode runs dsync-node with args (and the suite's secrets, unless args
// set their own), and waits until it listens.
func startNode(t *testing.T, args ...string) *nodeProc {
	t.Helper()
	bin, _ := binaries(t)
	// An operations port of its own (a node restarted on a fixed port
	// would otherwise take that port + 1, which may be another's).
	cmd := exec.Command(bin, append([]string{"-ops-listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "DSYNC_SECRET="+attackSecret, "DSYNC_ADMIN_SECRET="+attackAdmin)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	p := &nodeProc{cmd: cmd, output: &lockedBuffer{}, copied: make(chan struct{})}
	cmd.Stderr = p.output
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	require.True(t, sc.Scan(), "no output from dsync-node: %s", p.output.String())
	_, after, ok := strings.Cut(sc.Text(), "listening on ")
	require.True(t, ok, "first line %q", sc.Text())
	p.line = sc.Text()
	p.endpoint, _, _ = strings.Cut(after, " ")
	go func() {
		io.Copy(p.output, stdout)
		close(p.copied)
	}()
	return p
}

// rss returns the process's resident memory, in bytes (Linux only).
func (p *nodeProc) rss(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	require.Fail(t, "no VmRSS")
	return 0
}

func (p *nodeProc) addr() string {
	return strings.TrimPrefix(strings.TrimPrefix(p.endpoint, "http://"), "https://")
}

func client(t *testing.T, endpoint string, cc rest.ClientConfig) *rest.Client {
	t.Helper()
	if cc.Secret == "" && cc.AdminSecret == "" && !cc.Insecure {
		cc.Secret = attackSecret
	}
	c, err := rest.NewClient(endpoint, cc)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// dialFrom opens a TCP connection to addr from the loopback address src,
// so that the attacker's connections are counted apart from the honest
// client's (which dials from 127.0.0.1) by the node's per-address bound.
func dialFrom(src, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return d.Dial("tcp", addr)
}

// TestAttackUnauthenticatedBodies: 1,000 connections without credentials,
// each declaring an 8 MiB body and sending one byte, cost the node less
// than 64 MiB over its idle memory, and an honest client keeps being served
// meanwhile. (The bodies were allocated before authentication: 1.6 GB.)
func TestAttackUnauthenticatedBodies(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc for the node's memory, and dials from 127.0.0.2")
	}
	p := startNode(t, "-listen", "127.0.0.1:0", "-state-dir", "none", "-quiet", "0")
	c := client(t, p.endpoint, rest.ClientConfig{})
	ctx := context.Background()
	r, err := c.Lock(ctx, locker.LockArgs{UID: "warm", Resources: []string{"warm"}})
	require.NoError(t, err)
	require.True(t, r.OK)
	idle := p.rss(t)

	const attackers = 1000
	var refused, answered atomic.Int32
	var wg sync.WaitGroup
	conns := make(chan net.Conn, attackers)
	for i := range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := fmt.Sprintf("127.0.0.%d", 2+i%3) // three attacker addresses
			nc, err := dialFrom(src, p.addr())
			if err != nil {
				refused.Add(1)
				return
			}
			conns <- nc
			fmt.Fprintf(nc, "POST %sbatch HTTP/1.1\r\nHost: x\r\nAuthorization: DSYNC2-HMAC-SHA256 lock:n:1:1:%s:%s\r\nContent-Length: 8388608\r\n\r\nx",
				rest.PathPrefix, strings.Repeat("0", 64), strings.Repeat("0", 64))
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(nc).ReadString('\n')
			if err == nil && (strings.Contains(line, " 401 ") || strings.Contains(line, " 429 ") || strings.Contains(line, " 503 ")) {
				answered.Add(1)
			} else if err != nil {
				refused.Add(1) // closed at once, as past the node's bounds
			}
		}()
	}
	// The honest client, meanwhile.
	served := 0
	for i := range 100 {
		r, err := c.Lock(ctx, locker.LockArgs{UID: fmt.Sprint("honest-", i), Resources: []string{fmt.Sprint("r", i)}})
		if assert.NoError(t, err) && assert.True(t, r.OK) {
			served++
		}
	}
	peak := p.rss(t)
	wg.Wait()
	close(conns)
	for nc := range conns {
		nc.Close()
	}
	after := p.rss(t)
	t.Logf("node RSS: idle %d MiB, during the attack %d MiB, after %d MiB; %d answered 401/429/503, %d closed; honest calls served %d/100",
		idle>>20, peak>>20, after>>20, answered.Load(), refused.Load(), served)
	assert.Less(t, max(peak, after)-idle, int64(64<<20), "memory above idle")
	assert.Equal(t, 100, served)
	assert.EqualValues(t, attackers, answered.Load()+refused.Load())
	assert.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	assert.NoError(t, p.cmd.Wait(), "the node exits cleanly: it was never in danger")
}

// recorder is a TCP proxy in front of a node that keeps the bytes of every
// request that passes.
type recorder struct {
	ln   net.Listener
	mu   sync.Mutex
	reqs [][]byte
}

func newRecorder(t *testing.T, target string) *recorder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &recorder{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			go func() { io.Copy(in, out); in.Close() }()
			go func() {
				buf := make([]byte, 64<<10)
				for {
					n, err := in.Read(buf)
					if n > 0 {
						r.mu.Lock()
						r.reqs = append(r.reqs, append([]byte(nil), buf[:n]...))
						r.mu.Unlock()
						out.Write(buf[:n])
					}
					if err != nil {
						out.Close()
						return
					}
				}
			}()
		}
	}()
	return r
}

// last returns the last request that passed whose first line contains s.
func (r *recorder) last(s string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.reqs) - 1; i >= 0; i-- {
		if first, _, _ := bytes.Cut(r.reqs[i], []byte("\r\n")); bytes.Contains(first, []byte(s)) {
			return r.reqs[i]
		}
	}
	return nil
}

// replay sends raw to addr and returns the answer's status line.
func replay(t *testing.T, addr string, raw []byte) string {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	_, err = nc.Write(raw)
	require.NoError(t, err)
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(nc).ReadString('\n')
	require.NoError(t, err)
	return strings.TrimSpace(line)
}

// TestAttackReplayAcrossNodesAndRestarts: a signed force-unlock and lock
// recorded on their way to node A are refused by node B (same secret), and
// by node A once it has restarted, with its grace period on or off. (Node B
// accepted them: with a recorded force-unlock replayed across nodes, two
// clients held one write lock.)
func TestAttackReplayAcrossNodesAndRestarts(t *testing.T) {
	stateA := t.TempDir()
	a := startNode(t, "-listen", "127.0.0.1:0", "-state-dir", stateA)
	b := startNode(t, "-listen", "127.0.0.1:0", "-state-dir", t.TempDir())
	rec := newRecorder(t, a.addr())
	c := client(t, "http://"+rec.ln.Addr().String(), rest.ClientConfig{DisableBatching: true})
	ctx := context.Background()
	r, err := c.Lock(ctx, locker.LockArgs{UID: "victim", Resources: []string{"obj"}})
	require.NoError(t, err)
	require.True(t, r.OK)
	_, err = c.ForceUnlock(ctx, locker.LockArgs{UID: "victim"})
	require.NoError(t, err)
	lock, force := rec.last(rest.PathLock), rec.last(rest.PathForceUnlock)
	require.NotNil(t, lock)
	require.NotNil(t, force)

	for _, raw := range [][]byte{lock, force} {
		assert.Contains(t, replay(t, b.addr(), raw), "401", "replayed to another node")
		assert.Contains(t, replay(t, a.addr(), raw), "401", "replayed to the same node")
	}

	// Node A restarts, with the grace period on, then off.
	for _, args := range [][]string{{"-state-dir", stateA}, {"-state-dir", stateA, "-quiet", "0"}} {
		require.NoError(t, a.cmd.Process.Kill())
		a.cmd.Wait()
		a = startNode(t, append([]string{"-listen", a.addr()}, args...)...)
		for _, raw := range [][]byte{lock, force} {
			assert.Contains(t, replay(t, a.addr(), raw), "401", "replayed after a restart (%v)", args)
		}
	}
	admin := client(t, a.endpoint, rest.ClientConfig{AdminSecret: attackAdmin})
	page, err := admin.List(ctx, locker.ListArgs{})
	require.NoError(t, err)
	assert.Empty(t, page.Entries, "no replay granted anything")
}

// TestAttackLogFlood: 1,000 malformed 15 KB requests without credentials
// write a few lines to the node's log, not megabytes. (fasthttp's default
// logger wrote 122 MB.)
func TestAttackLogFlood(t *testing.T) {
	p := startNode(t, "-listen", "127.0.0.1:0", "-state-dir", "none", "-quiet", "0")
	junk := strings.Repeat("\x00\xff garbage ", 1500) // 15 KB
	var wg sync.WaitGroup
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", p.addr())
			if err != nil {
				return
			}
			defer nc.Close()
			fmt.Fprintf(nc, "G%d%s\r\n\r\n", i, junk)
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			io.Copy(io.Discard, nc)
		}()
	}
	wg.Wait()
	// A well-formed request after the flood is served.
	c := client(t, p.endpoint, rest.ClientConfig{})
	_, err := c.Refresh(context.Background(), locker.RefreshArgs{UIDs: []string{"x"}})
	require.NoError(t, err)
	t.Logf("the node wrote %d bytes while 1,000 malformed requests came", p.output.Len())
	assert.Less(t, p.output.Len(), 64<<10)
}

// TestAttackWeakSecret: a node refuses to start with a secret that is short
// or blank. (The secret " " was accepted.)
func TestAttackWeakSecret(t *testing.T) {
	bin, _ := binaries(t)
	for _, secret := range []string{" ", "s3cret", strings.Repeat(" ", 40)} {
		cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-state-dir", "none")
		cmd.Env = append(os.Environ(), "DSYNC_SECRET="+secret)
		out, err := cmd.CombinedOutput()
		assert.Error(t, err, "secret %q", secret)
		assert.Contains(t, string(out), "Secret", "secret %q: %s", secret, out)
	}
}

// TestAttackTerminalEscapes: a resource named with terminal escape codes
// is shown quoted by `dsync locks`. (It was printed raw: fake lines on an
// operator's terminal.)
func TestAttackTerminalEscapes(t *testing.T) {
	_, cli := binaries(t)
	p := startNode(t, "-listen", "127.0.0.1:0", "-state-dir", "none", "-quiet", "0")
	c := client(t, p.endpoint, rest.ClientConfig{})
	r, err := c.Lock(context.Background(), locker.LockArgs{UID: "u", Resources: []string{"a\x1b]0;owned\x07\r\nfake  write  1/1"}})
	require.NoError(t, err)
	require.True(t, r.OK)
	cmd := exec.Command(cli, "-nodes", p.endpoint, "locks")
	cmd.Env = append(os.Environ(), "DSYNC_ADMIN_SECRET="+attackAdmin)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, string(out), "\x1b")
	assert.Contains(t, string(out), `"a\x1b]0;owned\a\r\nfake  write  1/1"`)
}

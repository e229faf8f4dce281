//go:build linux && (amd64 || arm64)

package simulation

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// NetnsNetwork is the HTTP fabric with each node in its own Linux network
// namespace, joined to a namespace of the clients by a veth pair per node.
// Cut(-1, k, …) and Isolate(k) take node k's link down (both ways: a link
// has no direction); every other fault goes through the per-link proxies of
// HTTPNetwork, which run in the test's own namespace on loopback and dial
// nodes from the clients' namespace.
//
// Addresses (10.231.k.1 and 10.231.k.2 on node k's link) exist only inside
// the namespaces it creates; Close deletes them.
type NetnsNetwork struct {
	*HTTPNetwork
	clientNS string
	nodeNS   []string

	mu   sync.Mutex
	down []bool // node links taken down
}

var nsCounter atomic.Int64

// nsPrefix starts the name of every namespace this process creates.
func nsPrefix() string { return fmt.Sprintf("dsim%d-", os.Getpid()%100000) }

// CleanupNetns deletes every namespace this process created and did not
// delete, after a panic for instance. Tests register it with t.Cleanup.
func CleanupNetns() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		if name, _, _ := strings.Cut(strings.TrimSpace(line), " "); strings.HasPrefix(name, nsPrefix()) {
			exec.Command("ip", "netns", "del", name).Run()
		}
	}
}

// NetnsAvailable reports why the netns tier cannot run here, or nil: it
// needs root and a working `ip netns`.
func NetnsAvailable() error {
	if os.Geteuid() != 0 {
		return errors.New("not root")
	}
	name := fmt.Sprintf("dsimprobe%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add: %v: %s", err, strings.TrimSpace(string(out)))
	}
	exec.Command("ip", "netns", "del", name).Run()
	return nil
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// NewNetnsNetwork creates the namespaces and links and starts the nodes in
// them. cfg.Host, ListenNode and Dial are set by it.
func NewNetnsNetwork(cfg HTTPConfig) (_ *NetnsNetwork, err error) {
	cfg.Nodes, cfg.Clients = max(cfg.Nodes, 1), max(cfg.Clients, 1)
	id := fmt.Sprintf("%s%d", nsPrefix(), nsCounter.Add(1))
	n := &NetnsNetwork{clientNS: id + "c", down: make([]bool, cfg.Nodes)}
	defer func() {
		if err != nil {
			n.deleteNamespaces()
		}
	}()
	if err := ipCmd("netns", "add", n.clientNS); err != nil {
		return nil, err
	}
	if err := ipCmd("-n", n.clientNS, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	for k := range cfg.Nodes {
		ns := fmt.Sprintf("%sn%d", id, k)
		if err := ipCmd("netns", "add", ns); err != nil {
			return nil, err
		}
		n.nodeNS = append(n.nodeNS, ns)
		cside, nside := fmt.Sprintf("dc%d", k), fmt.Sprintf("dn%d", k)
		for _, args := range [][]string{
			{"-n", ns, "link", "set", "lo", "up"},
			{"-n", n.clientNS, "link", "add", cside, "type", "veth", "peer", "name", nside, "netns", ns},
			{"-n", n.clientNS, "addr", "add", fmt.Sprintf("10.231.%d.1/30", k), "dev", cside},
			{"-n", ns, "addr", "add", fmt.Sprintf("10.231.%d.2/30", k), "dev", nside},
			{"-n", n.clientNS, "link", "set", cside, "up"},
			{"-n", ns, "link", "set", nside, "up"},
		} {
			if err := ipCmd(args...); err != nil {
				return nil, err
			}
		}
	}
	cfg.ListenNode = func(k int) (net.Listener, error) {
		var ln net.Listener
		err := inNamespace(n.nodeNS[k], func() error {
			var err error
			ln, err = net.Listen("tcp", fmt.Sprintf("10.231.%d.2:0", k))
			return err
		})
		return ln, err
	}
	cfg.Dial = func(addr string, timeout time.Duration) (net.Conn, error) {
		var c net.Conn
		err := inNamespace(n.clientNS, func() error {
			var err error
			c, err = net.DialTimeout("tcp", addr, timeout)
			return err
		})
		return c, err
	}
	hn, err := NewHTTPNetwork(cfg)
	if err != nil {
		return nil, err
	}
	n.HTTPNetwork = hn
	return n, nil
}

// inNamespace runs f on an OS thread that is switched into the named
// network namespace; sockets f creates stay in it after f returns.
func inNamespace(name string, f func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open("/var/run/netns/" + name)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := setns(target.Fd()); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", name, err)
	}
	ferr := f()
	if err := setns(orig.Fd()); err != nil {
		// The thread stays locked and is discarded when this goroutine
		// ends: it must never run other goroutines in the wrong namespace.
		return fmt.Errorf("setns back: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}

func setns(fd uintptr) error {
	if _, _, e := syscall.RawSyscall(sysSetns, fd, syscall.CLONE_NEWNET, 0); e != 0 {
		return e
	}
	return nil
}

// setLink takes node k's link up or down.
func (n *NetnsNetwork) setLink(k int, up bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down[k] == !up {
		return
	}
	state := "down"
	if up {
		state = "up"
	}
	if err := ipCmd("-n", n.clientNS, "link", "set", fmt.Sprintf("dc%d", k), state); err != nil {
		panic("simulation: " + err.Error())
	}
	n.down[k] = !up
}

// Cut takes node k's link down when every client is cut from it both ways;
// other cuts go through the proxies.
func (n *NetnsNetwork) Cut(c, k int, dir Direction) {
	if c >= 0 || dir != Both {
		n.HTTPNetwork.Cut(c, k, dir)
		return
	}
	for kk := range n.nodeNS {
		if k < 0 || kk == k {
			n.setLink(kk, false)
		}
	}
}

// Isolate takes node k's link down.
func (n *NetnsNetwork) Isolate(k int) { n.Cut(-1, k, Both) }

// Heal brings every link up and heals the proxies.
func (n *NetnsNetwork) Heal() {
	for k := range n.nodeNS {
		n.setLink(k, true)
	}
	n.HTTPNetwork.Heal()
}

// Close stops everything and deletes the namespaces.
func (n *NetnsNetwork) Close() {
	n.HTTPNetwork.Close()
	n.deleteNamespaces()
}

func (n *NetnsNetwork) deleteNamespaces() {
	for _, ns := range append([]string{n.clientNS}, n.nodeNS...) {
		exec.Command("ip", "netns", "del", ns).Run() // deleting a namespace deletes its veth ends
	}
}

package bench

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/dsync-go/dsync/bench/loadgen"
)

// The latency floor: what one locker's acquire on 4 loopback nodes could cost
// at best on this machine, for telling the cost of the quorum client, the
// codec, authentication and the node's table apart from that of the
// operating system and of HTTP.
//
// BenchmarkLatencyFloor mirrors the shape of an idle acquire over package
// rest: one goroutine per node call (an idle rest.Client starts a sender
// for each call), each writing one request to its own loopback connection
// and reading one answer, the caller woken when 3 of the 4 have answered (a
// write quorum). It reports the p50 and p99 of that wait, as
// BenchmarkDsyncLockUnlock does for a real acquire:
//
//   - tcp: raw TCP, requests of 240 bytes and answers of 85, about what a
//     lock call and its answer take on the wire, HTTP headers included;
//   - http: fasthttp's server answering a 150-byte POST body with 20
//     bytes, nothing else done, to a client that writes a prepared request
//     and reads the answer's header lines, as rest's client does
//     (transport.go): HTTP's share;
//   - http-hostclient: the same through fasthttp.HostClient, which rest's
//     client used before transport.go;
//
// and BenchmarkDsyncLockUnlock's http-insecure and http runs add the quorum
// client, the codec and the table, then authentication. Compare them in one
// interleaved run (the VM's speed drifts):
//
//	go test -run '^$' -bench 'LatencyFloor|DsyncLockUnlock/http' -count 5 ./bench/
func BenchmarkLatencyFloor(b *testing.B) {
	const nodes, quorum = 4, 3
	b.Run("tcp", func(b *testing.B) {
		conns := make([]net.Conn, nodes)
		for i := range conns {
			conns[i] = startEchoNode(b, 240, 85)
		}
		req := make([]byte, 240)
		floorLoop(b, nodes, quorum, func(node int) error {
			c := conns[node]
			if _, err := c.Write(req); err != nil {
				return err
			}
			var resp [85]byte
			_, err := io.ReadFull(c, resp[:])
			return err
		})
	})
	b.Run("http-hostclient", func(b *testing.B) {
		// Each node's request and response are made once and reused, as
		// rest's client reused them: what is measured is HostClient's work
		// per request.
		type node struct {
			hc   *fasthttp.HostClient
			req  fasthttp.Request
			resp fasthttp.Response
		}
		ns := make([]*node, nodes)
		for i := range ns {
			n := &node{hc: &fasthttp.HostClient{Addr: startHTTPNode(b), NoDefaultUserAgentHeader: true, DisablePathNormalizing: true}}
			n.req.Header.SetMethod(fasthttp.MethodPost)
			n.req.SetRequestURI("/v1/lock")
			n.req.Header.SetHost("node")
			n.req.SetBody(make([]byte, 150))
			ns[i] = n
		}
		floorLoop(b, nodes, quorum, func(i int) error {
			n := ns[i]
			return n.hc.DoDeadline(&n.req, &n.resp, time.Now().Add(5*time.Second))
		})
	})
	b.Run("http", func(b *testing.B) {
		type conn struct {
			c net.Conn
			r *bufio.Reader
		}
		conns := make([]conn, nodes)
		for i := range conns {
			c, err := net.Dial("tcp", startHTTPNode(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			conns[i] = conn{c, bufio.NewReader(c)}
		}
		req := append([]byte("POST /v1/lock HTTP/1.1\r\nHost: node\r\nContent-Length: 150\r\n\r\n"), make([]byte, 150)...)
		floorLoop(b, nodes, quorum, func(node int) error {
			c := conns[node]
			if _, err := c.c.Write(req); err != nil {
				return err
			}
			n := -1
			for {
				line, err := c.r.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(line) <= 2 {
					break
				}
				if k, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
					n, _ = strconv.Atoi(string(bytes.TrimSpace(k)))
				}
			}
			_, err := c.r.Discard(n)
			return err
		})
	})
}

// floorLoop calls call once for each of n nodes on its own goroutine, per
// iteration, and records how long the first quorum answers took; the
// iteration ends when all n have answered, so that no connection carries two
// calls at once.
func floorLoop(b *testing.B, n, quorum int, call func(node int) error) {
	var h loadgen.Histogram
	answers := make(chan error, n)
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		for node := range n {
			go func() { answers <- call(node) }()
		}
		for i := range n {
			if err := <-answers; err != nil {
				b.Fatal(err)
			}
			if i == quorum-1 {
				h.Record(time.Since(t0))
			}
		}
	}
	b.ReportMetric(float64(h.Quantile(0.5).Nanoseconds()), "p50-quorum-ns")
	b.ReportMetric(float64(h.Quantile(0.99).Nanoseconds()), "p99-quorum-ns")
}

// startEchoNode starts a loopback TCP server that answers every reqSize
// bytes it reads with respSize bytes, and returns a connection to it; both
// close when b ends.
func startEchoNode(b *testing.B, reqSize, respSize int) net.Conn {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		req, resp := make([]byte, reqSize), make([]byte, respSize)
		for {
			if _, err := io.ReadFull(r, req); err != nil {
				return
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c.Close()
		ln.Close()
		wg.Wait()
	})
	return c
}

// startHTTPNode starts a fasthttp server on loopback that answers every
// request with 20 bytes, and returns its address; it closes when b ends.
func startHTTPNode(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	answer := make([]byte, 20)
	srv := &fasthttp.Server{
		Handler:               func(rc *fasthttp.RequestCtx) { rc.SetBody(answer) },
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		NoDefaultContentType:  true,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	b.Cleanup(func() {
		srv.Shutdown()
		<-done
	})
	return ln.Addr().String()
}

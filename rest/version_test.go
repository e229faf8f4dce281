package rest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
)

// fakeNode answers every request on a loopback listener with answer, and
// sends the request lines it read to lines.
func fakeNode(t *testing.T, answer string) (endpoint string, lines <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	ch := make(chan string, 16)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					select {
					case ch <- strings.TrimSpace(line):
					default:
					}
					length := 0
					for {
						h, err := br.ReadString('\n')
						if err != nil {
							return
						}
						h = strings.TrimSpace(h)
						if h == "" {
							break
						}
						fmt.Sscanf(strings.ToLower(h), "content-length: %d", &length)
					}
					if _, err := io.CopyN(io.Discard, br, int64(length)); err != nil {
						return
					}
					if _, err := io.WriteString(conn, answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String(), ch
}

// TestClientRefusesOtherVersions: a client reads no answer of a node that
// speaks another protocol version, and says which versions met.
func TestClientRefusesOtherVersions(t *testing.T) {
	grant, err := (&locker.Reply{OK: true, Fence: 1, Validity: 1}).MarshalMsg(nil)
	require.NoError(t, err)
	for _, tc := range []struct {
		name, answer string
		node         int
		want         string
	}{
		{"protocol 1", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0,
			"answered without a Dsync-Protocol header: it speaks protocol 1 or is not a dsync node; this client speaks protocol 2 (upgrade the node)"},
		{"protocol 3, even a 200", fmt.Sprintf("HTTP/1.1 200 OK\r\nDsync-Protocol: 3\r\nContent-Length: %d\r\n\r\n%s", len(grant), grant), 3,
			"speaks protocol 3, this client speaks protocol 2 (upgrade the client)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			endpoint, lines := fakeNode(t, tc.answer)
			for _, batching := range []bool{false, true} {
				c := newClient(t, endpoint, ClientConfig{Insecure: true, DisableBatching: !batching})
				_, err := c.Lock(context.Background(), locker.LockArgs{UID: "u", Resources: []string{"a"}})
				require.ErrorIs(t, err, ErrVersion)
				assert.ErrorIs(t, err, ErrProtocol)
				var ve *VersionError
				require.True(t, errors.As(err, &ve))
				assert.Equal(t, ProtocolVersion, ve.Client)
				assert.Equal(t, tc.node, ve.Node)
				assert.Contains(t, err.Error(), tc.want)
				assert.Contains(t, <-lines, " /dsync/v2/", "requests name their version in the path")
			}
		})
	}
}

// TestServerStampsEveryAnswer: every answer of a node names its protocol
// version, errors and answers to requests of other versions included.
func TestServerStampsEveryAnswer(t *testing.T) {
	tbl := locker.New(locker.Config{SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod})
	defer tbl.Close()
	_, endpoint := startServer(t, tbl, ServerConfig{Insecure: true, MaxBodyBytes: 64})
	addr := strings.TrimPrefix(endpoint, "http://")
	for _, req := range []string{
		"GET " + PathHealth + " HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /dsync/v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST " + PathLock + " HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 100),
	} {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		_, err = io.WriteString(conn, req)
		require.NoError(t, err)
		var body []byte
		a, err := readResponse(bufio.NewReader(conn), &body, 1<<20)
		conn.Close()
		require.NoError(t, err)
		assert.Equal(t, ProtocolVersion, a.protocol, "answer %d to %q", a.status, strings.SplitN(req, "\r\n", 2)[0])
	}
}

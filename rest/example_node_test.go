package rest_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

// Embed a lock node in a storage server, and lock through three of them.
// Each storage server opens its table with a state directory (its boot
// record: a first start grants at once, a restart under held locks waits one
// validity while holders reclaim them), serves it, and, to stop, drains it,
// closes the server and then the table. The README's node and client
// programs are the same code as two commands.
func Example_embedNode() {
	const secret = "0123456789abcdef0123456789abcdef" // at least 32 bytes: use `openssl rand -hex 32`
	stateDir, err := os.MkdirTemp("", "dsync-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(stateDir)

	// Three nodes; in production, one in each storage server.
	var endpoints []string
	for i := range 3 {
		table, err := locker.Open(locker.Config{StateDir: filepath.Join(stateDir, fmt.Sprint(i))})
		if err != nil {
			log.Fatal(err)
		}
		srv, err := rest.NewServer(table, rest.ServerConfig{Secret: secret})
		if err != nil {
			log.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		go srv.Serve(ln)
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
			defer cancel()
			srv.Drain(ctx) // refuse new locks until the held ones are released
			srv.Close()
			table.Close() // records that no grant was left: the next start has no grace
		}()
		endpoints = append(endpoints, "http://"+ln.Addr().String())
	}

	// A client process: one rest.Client per node, one Dsync over them.
	var lockers []locker.NetLocker
	for _, ep := range endpoints {
		c, err := rest.NewClient(ep, rest.ClientConfig{Secret: secret})
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close()
		lockers = append(lockers, c)
	}
	ds, err := dsync.New(lockers, dsync.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()

	m := dsync.NewDRWMutex(ds, "bucket/object")
	lockCtx, err := m.GetLock(context.Background(), dsync.Options{Timeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("holding bucket/object on a write quorum of %d of %d nodes: %v\n", ds.WriteQuorum(), ds.Lockers(), lockCtx.Err() == nil)
	if err := m.Unlock(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("released")
	// Output:
	// holding bucket/object on a write quorum of 2 of 3 nodes: true
	// released
}

package rest_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

// Ask a node who holds a resource, changing nothing.
func ExampleClient_Query() {
	table := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod})
	defer table.Close()
	srv, _ := rest.NewServer(table, rest.ServerConfig{Secret: "0123456789abcdef0123456789abcdef" /* at least 32 bytes: use `openssl rand -hex 32` */})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	c, err := rest.NewClient("http://"+ln.Addr().String(), rest.ClientConfig{Secret: "0123456789abcdef0123456789abcdef" /* at least 32 bytes: use `openssl rand -hex 32` */})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx := context.Background()
	c.RLock(ctx, locker.LockArgs{UID: "reader-1", Resources: []string{"bucket/object"}, Quorum: 1})
	r, err := c.Query(ctx, locker.QueryArgs{Resources: []string{"bucket/object"}})
	if err != nil {
		log.Fatal(err)
	}
	// The node names the grant by its UID's tag: a UID is a capability.
	for _, h := range r.Resources[0].Holders {
		fmt.Println(h.Tag == locker.UIDTag("reader-1"), h.UID == "", "write:", h.Write)
	}
	// Output:
	// true true write: false
}

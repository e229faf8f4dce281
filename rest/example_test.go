package rest_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

// Serve a node's lock table on a loopback port.
func ExampleServer() {
	table := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod})
	defer table.Close()

	srv, err := rest.NewServer(table, rest.ServerConfig{Secret: "0123456789abcdef0123456789abcdef" /* at least 32 bytes: use `openssl rand -hex 32` */})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	// ... clients call http://<ln.Addr()> ...

	srv.Close()
	fmt.Println("Serve returned", <-served)
	// Output: Serve returned <nil>
}

// Lock and unlock a resource on one node through its HTTP client.
func ExampleClient() {
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
	args := locker.LockArgs{UID: "6f1c0e2a", Resources: []string{"bucket/object"}, Owner: "host:123", Quorum: 1}
	reply, err := c.Lock(ctx, args)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("granted:", reply.OK)

	other := locker.LockArgs{UID: "9a7d3b41", Resources: []string{"bucket/object"}}
	reply, _ = c.Lock(ctx, other)
	fmt.Println("second writer granted:", reply.OK, "-", reply.Reason)

	reply, _ = c.Unlock(ctx, args)
	fmt.Println("released:", reply.OK)
	// Output:
	// granted: true
	// second writer granted: false - held by another
	// released: true
}

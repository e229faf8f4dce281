package locker_test

import (
	"context"
	"fmt"
	"time"

	"github.com/dsync-go/dsync/locker"
)

func ExampleNew() {
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, Validity: time.Minute})
	defer tbl.Close()
	ctx := context.Background()

	w, _ := tbl.Lock(ctx, locker.LockArgs{UID: "uid-1", Resources: []string{"bucket/object"}, Owner: "node-a"})
	r, _ := tbl.RLock(ctx, locker.LockArgs{UID: "uid-2", Resources: []string{"bucket/object"}, Owner: "node-b"})
	fmt.Println("write granted:", w.OK)
	fmt.Println("read granted:", r.OK, "reason:", r.Reason)

	st, _ := tbl.Refresh(ctx, locker.RefreshArgs{UIDs: []string{"uid-1", "uid-2"}})
	fmt.Println("refresh:", st.Status)

	u, _ := tbl.Unlock(ctx, locker.LockArgs{UID: "uid-1"})
	again, err := tbl.Unlock(ctx, locker.LockArgs{UID: "uid-1"})
	fmt.Println("unlock:", u.OK, "again:", again.OK, err)
	// Output:
	// write granted: true
	// read granted: false reason: held by another
	// refresh: [refreshed not held]
	// unlock: true again: false <nil>
}

// printSink prints the answers of submitted calls.
type printSink struct{}

func (printSink) Done(tag int, r locker.Reply, err error) {
	fmt.Printf("call %d: ok=%v reason=%q err=%v\n", tag, r.OK, r.Reason, err)
}

// Submit starts a call without a goroutine waiting for it; the answer goes
// to a Sink. The in-memory table answers before Submit returns; the HTTP
// client of package rest answers from the goroutine that reads the node's
// response. Package dsync uses it to ask every node at once from one
// goroutine.
func ExampleLocal_Submit() {
	table := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod})
	defer table.Close()
	ctx := context.Background()
	var s locker.Submitter = table
	s.Submit(ctx, locker.OpLock, &locker.LockArgs{UID: "a", Resources: []string{"obj"}}, time.Second, printSink{}, 1)
	s.Submit(ctx, locker.OpLock, &locker.LockArgs{UID: "b", Resources: []string{"obj"}}, time.Second, printSink{}, 2)
	s.Submit(ctx, locker.OpUnlock, &locker.LockArgs{UID: "a"}, time.Second, printSink{}, 3)
	// Output:
	// call 1: ok=true reason="none" err=<nil>
	// call 2: ok=false reason="held by another" err=<nil>
	// call 3: ok=true reason="none" err=<nil>
}

// A node's fence counter orders every grant it makes; raising it makes
// every later grant larger than the floor. DRWMutex.FencingToken in package
// dsync builds fencing tokens that hold across nodes from it.
func ExampleLocal_RaiseFence() {
	table := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod})
	defer table.Close()
	ctx := context.Background()
	before, _ := table.RaiseFence(ctx, locker.FenceArgs{}) // a zero floor only reads
	floor := before.Fence + 1000
	table.RaiseFence(ctx, locker.FenceArgs{Floor: floor})
	r, _ := table.Lock(ctx, locker.LockArgs{UID: "a", Resources: []string{"obj"}})
	fmt.Println("granted:", r.OK, "fence above the floor:", r.Fence > floor)
	// Output:
	// granted: true fence above the floor: true
}

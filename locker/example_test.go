package locker_test

import (
	"context"
	"fmt"
	"time"

	"github.com/dsync-go/dsync/locker"
)

func ExampleNew() {
	tbl := locker.New(locker.Config{Validity: time.Minute})
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

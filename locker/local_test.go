package locker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/locker/lockertest"
)

func TestLocalConformance(t *testing.T) {
	// The default shard count, and the extremes: one shard, where every
	// UID and resource meet on the same mutex, and the most there may be.
	for _, shards := range []int{0, 1, locker.MaxShards} {
		t.Run(fmt.Sprint("shards=", shards), func(t *testing.T) {
			lockertest.Run(t, func(t *testing.T, cfg locker.Config) locker.NetLocker {
				if cfg.Shards == 0 { // unless the case needs a count of its own (the caps' cases)
					cfg.Shards = shards
				}
				l := locker.New(cfg)
				t.Cleanup(func() { l.Close() })
				return l
			})
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []locker.Config{
		{Validity: -1}, {MaxResources: -1}, {MaxWaiters: -1},
		{Shards: -1}, {Shards: 3}, {Shards: 2 * locker.MaxShards},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", c)
		}
	}
	if err := (locker.Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	defer func() {
		if r := recover(); r == nil {
			t.Error("New with a negative Validity did not panic")
		}
	}()
	locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, Validity: -time.Second})
}

func TestExpireReclaimsOnlyExpired(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, Validity: 10 * time.Second, Clock: clk, SweepInterval: -1})
	defer l.Close()
	ctx := context.Background()
	for i := range 100 {
		if r, err := l.Lock(ctx, locker.LockArgs{UID: fmt.Sprint("old", i), Resources: []string{fmt.Sprint("r", i)}}); err != nil || !r.OK {
			t.Fatalf("lock %d: %v %v", i, r, err)
		}
	}
	clk.Advance(5 * time.Second)
	for i := range 50 {
		if r, err := l.RLock(ctx, locker.LockArgs{UID: fmt.Sprint("new", i), Resources: []string{fmt.Sprint("s", i), fmt.Sprint("t", i)}}); err != nil || !r.OK {
			t.Fatalf("rlock %d: %v %v", i, r, err)
		}
	}
	// Keep half of the old ones alive.
	var keep []string
	for i := range 50 {
		keep = append(keep, fmt.Sprint("old", i))
	}
	if _, err := l.Refresh(ctx, locker.RefreshArgs{UIDs: keep}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(5 * time.Second)
	if n := l.Expire(); n != 50 {
		t.Fatalf("Expire removed %d grants, want 50", n)
	}
	if st := l.Stats(); st.Grants != 100 || st.Resources != 150 {
		t.Fatalf("after expiry: %+v, want 100 grants on 150 resources", st)
	}
	clk.Advance(5 * time.Second)
	if n := l.Expire(); n != 100 {
		t.Fatalf("second Expire removed %d grants, want 100", n)
	}
	if st := l.Stats(); st != (locker.Stats{}) {
		t.Fatalf("table not empty: %+v", st)
	}
}

func TestIntentEntriesAreSwept(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, Clock: clk, SweepInterval: -1})
	defer l.Close()
	ctx := context.Background()
	for i := range 50 {
		name := fmt.Sprint("r", i)
		l.RLock(ctx, locker.LockArgs{UID: "reader" + name, Resources: []string{name}})
		if r, _ := l.Lock(ctx, locker.LockArgs{UID: "writer" + name, Resources: []string{name}}); r.OK {
			t.Fatal("writer granted over a reader")
		}
		l.RUnlock(ctx, locker.LockArgs{UID: "reader" + name})
	}
	// The writers never come back: their intents keep 50 empty entries.
	if st := l.Stats(); st.Resources != 50 || st.Grants != 0 {
		t.Fatalf("before the intents lapse: %+v", st)
	}
	l.Expire()
	if st := l.Stats(); st.Resources != 50 {
		t.Fatalf("fresh intents swept: %+v", st)
	}
	clk.Advance(locker.DefaultWriterIntent)
	l.Expire()
	if st := l.Stats(); st.Resources != 0 {
		t.Fatalf("lapsed intents kept: %+v", st)
	}
	// The recycled entries work.
	for i := range 50 {
		name := fmt.Sprint("r", i)
		if r, err := l.RLock(ctx, locker.LockArgs{UID: "again" + name, Resources: []string{name}}); err != nil || !r.OK {
			t.Fatalf("rlock %s after sweep: %v %v", name, r, err)
		}
	}
}

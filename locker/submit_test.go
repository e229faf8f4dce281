package locker_test

import (
	"context"
	"errors"
	"testing"

	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/locker/lockertest"
)

func TestLocalSubmitConformance(t *testing.T) {
	lockertest.RunSubmit(t, func(t *testing.T, cfg locker.Config) locker.NetLocker {
		l := locker.New(cfg)
		t.Cleanup(func() { l.Close() })
		return l
	})
}

func TestLocalSubmitAnswersBeforeReturning(t *testing.T) {
	l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer l.Close()
	sink := make(lockertest.Sink, 2)
	l.Submit(context.Background(), locker.OpLock, &locker.LockArgs{UID: "a", Resources: []string{"r"}}, 0, sink, 1)
	if len(sink) != 1 {
		t.Fatal("no answer when Submit returned")
	}
	l.Submit(context.Background(), locker.Op(0), &locker.LockArgs{UID: "a", Resources: []string{"r"}}, 0, sink, 2)
	<-sink
	if a := <-sink; !errors.Is(a.Err, locker.ErrInvalidArgs) {
		t.Fatalf("unknown op: %+v, want ErrInvalidArgs", a)
	}
}

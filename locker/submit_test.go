package locker_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

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
	require.Len(t, sink, 1, "no answer when Submit returned")
	l.Submit(context.Background(), locker.Op(0), &locker.LockArgs{UID: "a", Resources: []string{"r"}}, 0, sink, 2)
	<-sink
	a := <-sink
	require.ErrorIs(t, a.Err, locker.ErrInvalidArgs, "unknown op: %+v", a)
}

package locker_test

import (
	"testing"

	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/locker/lockertest"
)

func TestLocalVersionConformance(t *testing.T) {
	lockertest.RunVersion(t, func(t *testing.T, cfg locker.Config) locker.NetLocker {
		l := locker.New(cfg)
		t.Cleanup(func() { l.Close() })
		return l
	})
}

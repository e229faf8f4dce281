package main

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dsync-go/dsync/locker"
)

func TestHolderModeNames(t *testing.T) {
	for _, tc := range []struct {
		e    locker.Entry
		want string
	}{
		{locker.Entry{Write: true}, "write"},
		{locker.Entry{Write: true, Mode: locker.ModeX}, "write"},
		{locker.Entry{}, "read"}, // a node that predates modes
		{locker.Entry{Mode: locker.ModeS}, "read"},
		{locker.Entry{Mode: locker.ModeIS}, "IS"},
		{locker.Entry{Mode: locker.ModeIX}, "IX"},
		{locker.Entry{Mode: locker.ModeSIX}, "SIX"},
	} {
		assert.Equal(t, tc.want, (&holder{Entry: tc.e}).mode(), "%+v", tc.e)
	}
}

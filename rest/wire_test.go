package rest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
)

// TestWireLeavesOutZeroFields pins the compact encodings of the commonest
// batch entries, which the client sends and the node answers on every
// operation.
func TestWireLeavesOutZeroFields(t *testing.T) {
	for _, c := range []struct {
		name string
		m    interface{ MarshalMsg([]byte) ([]byte, error) }
		want string
	}{
		{"unlock op", &BatchOp{Verb: VerbUnlock, Lock: locker.LockArgs{UID: "u1"}}, "\x82\xa1v\x03\xa1l\x81\xa1u\xa2u1"},
		{"refresh op", &BatchOp{Verb: VerbRefresh, Refresh: locker.RefreshArgs{UIDs: []string{"u1"}}}, "\x82\xa1v\x05\xa1r\x81\xa1u\x91\xa2u1"},
		{"unlocked", &BatchResult{Reply: locker.Reply{OK: true}}, "\x81\xa1p\x81\xa1k\xc3"},
		{"granted", &BatchResult{Reply: locker.Reply{OK: true, Fence: 7}}, "\x81\xa1p\x82\xa1k\xc3\xa1f\x07"},
		{"refused", &BatchResult{Reply: locker.Reply{Reason: locker.ReasonConflict}}, "\x81\xa1p\x81\xa1w\x01"},
		{"not unlocked", &BatchResult{}, "\x80"},
	} {
		got, err := c.m.MarshalMsg(nil)
		assert.NoError(t, err, "%s: encoded %q", c.name, got)
		assert.Equal(t, c.want, string(got), "%s: encoded", c.name)
	}
}

// TestWireDecodesMissingFieldsAsZero checks that decoding into a value that
// is not zero (the client reuses its reply buffers) clears the fields the
// message leaves out, so no answer inherits part of an earlier one.
func TestWireDecodesMissingFieldsAsZero(t *testing.T) {
	body, err := (&BatchReply{Results: []BatchResult{{Reply: locker.Reply{OK: true}}}}).MarshalMsg(nil)
	require.NoError(t, err)
	r := BatchReply{Results: []BatchResult{{
		Code: CodeBusy, Message: "stale", Reply: locker.Reply{Reason: locker.ReasonQuiet, Fence: 9},
		Refresh: locker.RefreshReply{Status: []locker.RefreshStatus{locker.RefreshRefreshed}},
	}}}
	_, err = r.UnmarshalMsg(body)
	require.NoError(t, err)
	got := r.Results[0]
	require.Equal(t, CodeOK, got.Code, "decoded %+v over a stale result; want only OK set", got)
	require.Empty(t, got.Message, "decoded %+v over a stale result; want only OK set", got)
	require.Equal(t, locker.Reply{OK: true}, got.Reply, "decoded %+v over a stale result; want only OK set", got)
	require.Empty(t, got.Refresh.Status, "decoded %+v over a stale result; want only OK set", got)

	body, err = (&BatchOp{Verb: VerbUnlock, Lock: locker.LockArgs{UID: "u2"}}).MarshalMsg(nil)
	require.NoError(t, err)
	op := BatchOp{Lock: locker.LockArgs{UID: "u1", Resources: []string{"r"}, Owner: "o", Source: "s", Quorum: 3, NoIntent: true, Holder: "h", Reclaim: true, Incarnation: 5, PublicUID: true},
		Refresh: locker.RefreshArgs{UIDs: []string{"x"}}}
	_, err = op.UnmarshalMsg(body)
	require.NoError(t, err)
	want := locker.LockArgs{UID: "u2"}
	msg := "decoded over a stale op; want only the verb and UID"
	require.Equal(t, VerbUnlock, op.Verb, msg)
	require.Equal(t, want.UID, op.Lock.UID, msg)
	require.Empty(t, op.Lock.Resources, msg)
	require.Empty(t, op.Lock.Owner, msg)
	require.Empty(t, op.Lock.Source, msg)
	require.Zero(t, op.Lock.Quorum, msg)
	require.False(t, op.Lock.NoIntent, msg)
	require.Empty(t, op.Lock.Holder, msg)
	require.False(t, op.Lock.Reclaim, msg)
	require.Zero(t, op.Lock.Incarnation, msg)
	require.False(t, op.Lock.PublicUID, msg)
	require.True(t, op.Refresh.IsZero(), msg)
}

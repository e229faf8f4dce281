package rest

import (
	"bytes"
	"testing"

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
		if err != nil || !bytes.Equal(got, []byte(c.want)) {
			t.Errorf("%s: encoded %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}

// TestWireDecodesMissingFieldsAsZero checks that decoding into a value that
// is not zero (the client reuses its reply buffers) clears the fields the
// message leaves out, so no answer inherits part of an earlier one.
func TestWireDecodesMissingFieldsAsZero(t *testing.T) {
	body, err := (&BatchReply{Results: []BatchResult{{Reply: locker.Reply{OK: true}}}}).MarshalMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := BatchReply{Results: []BatchResult{{
		Code: CodeBusy, Message: "stale", Reply: locker.Reply{Reason: locker.ReasonQuiet, Fence: 9},
		Refresh: locker.RefreshReply{Status: []locker.RefreshStatus{locker.RefreshRefreshed}},
	}}}
	if _, err := r.UnmarshalMsg(body); err != nil {
		t.Fatal(err)
	}
	got := r.Results[0]
	if got.Code != CodeOK || got.Message != "" || got.Reply != (locker.Reply{OK: true}) || len(got.Refresh.Status) != 0 {
		t.Fatalf("decoded %+v over a stale result; want only OK set", got)
	}

	body, err = (&BatchOp{Verb: VerbUnlock, Lock: locker.LockArgs{UID: "u2"}}).MarshalMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	op := BatchOp{Lock: locker.LockArgs{UID: "u1", Resources: []string{"r"}, Owner: "o", Source: "s", Quorum: 3, NoIntent: true, Holder: "h", Reclaim: true, Incarnation: 5, PublicUID: true},
		Refresh: locker.RefreshArgs{UIDs: []string{"x"}}}
	if _, err := op.UnmarshalMsg(body); err != nil {
		t.Fatal(err)
	}
	want := locker.LockArgs{UID: "u2"}
	if op.Verb != VerbUnlock || op.Lock.UID != want.UID || len(op.Lock.Resources) != 0 || op.Lock.Owner != "" ||
		op.Lock.Source != "" || op.Lock.Quorum != 0 || op.Lock.NoIntent || op.Lock.Holder != "" || op.Lock.Reclaim || op.Lock.Incarnation != 0 || op.Lock.PublicUID || !op.Refresh.IsZero() {
		t.Fatalf("decoded %+v over a stale op; want only the verb and UID", op)
	}
}

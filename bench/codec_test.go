package bench

import (
	"testing"

	"github.com/dsync-go/dsync/locker"
)

// BenchmarkCodecLockArgs encodes a one-resource lock request with msgp and
// decodes it again, reusing both buffers, as a client and a node do per
// request. Target: under 300 ns for the pair.
func BenchmarkCodecLockArgs(b *testing.B) {
	in := lockArgs(uid(1), "bucket/object-1")
	buf := make([]byte, 0, in.Msgsize())
	var out locker.LockArgs
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = in.MarshalMsg(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := out.UnmarshalMsg(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "wire-bytes")
}

// BenchmarkCodecLockArgsEncode and BenchmarkCodecLockArgsDecode split the
// pair above into its halves.
func BenchmarkCodecLockArgsEncode(b *testing.B) {
	in := lockArgs(uid(1), "bucket/object-1")
	buf := make([]byte, 0, in.Msgsize())
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = in.MarshalMsg(buf[:0])
	}
}

func BenchmarkCodecLockArgsDecode(b *testing.B) {
	in := lockArgs(uid(1), "bucket/object-1")
	buf, _ := in.MarshalMsg(nil)
	var out locker.LockArgs
	b.ReportAllocs()
	for b.Loop() {
		if _, err := out.UnmarshalMsg(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCodecReply encodes and decodes a grant reply.
func BenchmarkCodecReply(b *testing.B) {
	in := locker.Reply{OK: true, Fence: 1_790_000_000_000_000_123}
	buf := make([]byte, 0, in.Msgsize())
	var out locker.Reply
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = in.MarshalMsg(buf[:0])
		if _, err := out.UnmarshalMsg(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCodecRefresh10k encodes and decodes the refresh request and reply
// for 10,000 held locks: the one request per node per interval that a
// process holding 10,000 locks sends.
func BenchmarkCodecRefresh10k(b *testing.B) {
	args := locker.RefreshArgs{UIDs: make([]string, 10_000)}
	reply := locker.RefreshReply{Status: make([]locker.RefreshStatus, len(args.UIDs))}
	for i := range args.UIDs {
		args.UIDs[i] = uid(i)
		reply.Status[i] = locker.RefreshRefreshed
	}
	var (
		abuf = make([]byte, 0, args.Msgsize())
		rbuf = make([]byte, 0, reply.Msgsize())
		aout locker.RefreshArgs
		rout locker.RefreshReply
	)
	b.ReportAllocs()
	for b.Loop() {
		abuf, _ = args.MarshalMsg(abuf[:0])
		if _, err := aout.UnmarshalMsg(abuf); err != nil {
			b.Fatal(err)
		}
		rbuf, _ = reply.MarshalMsg(rbuf[:0])
		if _, err := rout.UnmarshalMsg(rbuf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(abuf)+len(rbuf)), "wire-bytes")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(args.UIDs)), "ns/uid")
}

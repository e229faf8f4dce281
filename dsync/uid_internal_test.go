package dsync

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUIDsAreUnguessable: every UID is 128 fresh random bits, so one that
// leaks says nothing of another (a UID is a capability).
func TestUIDsAreUnguessable(t *testing.T) {
	ds := &Dsync{}
	seen := map[string]bool{}
	var prev []byte
	for range 10_000 {
		uid := ds.newUID()
		require.Len(t, uid, 22)
		require.False(t, seen[uid], "UID %s drawn twice", uid)
		seen[uid] = true
		raw, err := base64.RawURLEncoding.DecodeString(uid)
		require.NoError(t, err)
		if prev != nil {
			same := 0
			for i := range raw {
				if raw[i] == prev[i] {
					same++
				}
			}
			assert.Less(t, same, 8, "consecutive UIDs %x and %x share a prefix", prev, raw)
		}
		prev = raw
	}
}

func BenchmarkNewUID(b *testing.B) {
	ds := &Dsync{}
	for b.Loop() {
		ds.newUID()
	}
}

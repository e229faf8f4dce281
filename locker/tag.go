package locker

import (
	"crypto/sha256"
	"encoding/hex"
)

// A UID is a capability: whoever knows it can refresh the grant and release
// it (NetLocker's Refresh, Unlock, ForceUnlock). So a table reveals UIDs
// only in listings (Lister), an admin's view, and to nobody else: Query and
// Waits name a grant by its tag instead, unless its lock asked for its UID
// to be public (LockArgs.PublicUID).

// UIDTag returns the tag of uid: the first 12 bytes of its SHA-256, in 24
// hex digits. Every node gives a grant the same tag, so that callers can
// tell whether the grants different nodes report are one acquisition; but
// a tag cannot be turned back into its UID, nor used in its place.
func UIDTag(uid string) string {
	sum := sha256.Sum256([]byte(uid))
	return hex.EncodeToString(sum[:12])
}

package locker

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// The boot record (Config.StateDir) lets a node tell a first start, or a
// start after a clean stop, from a restart after a crash, and so skip the
// restart grace period when no lock can have been lost.
//
// The rule. A node must not grant a new lock while a client may still hold a
// grant that the node gave before it restarted and no longer knows: that
// grant lives, on the client's side, at most the validity the node gave it,
// counted from its last refresh, which came before the restart. So a node
// that may have held grants when it stopped waits, after it starts, at least
// the validity it had then (QuietPeriod), granting only reclaims. A node
// that has never run, or that stopped (Close) holding no live grant, has no
// such grant to protect: it needs no grace. The record says which.
//
// The record is written before the table serves anything, saying "running"
// with the longer of the table's validity and its grace, and again by Close,
// saying whether a live grant was left. A crash leaves "running", so the
// next start waits. The writes go to a temporary file, synced, then renamed
// over the record, so a crash mid-write leaves the old record whole.

// bootFile is the boot record's name in Config.StateDir.
const bootFile = "dsync-boot.json"

// bootRecord is the content of the boot record.
type bootRecord struct {
	// Format is 1.
	Format int `json:"format"`
	// ID is the node's identity, drawn at its first start and kept.
	ID string `json:"id"`
	// Running is true from the start of a table until a Close that found
	// no live grant.
	Running bool `json:"running"`
	// Validity is the longest validity that a grant the node may still
	// have to protect was given: the table's validity, or the grace of its
	// start if longer.
	Validity time.Duration `json:"validity_ns"`
	// Boots counts the starts of the node.
	Boots uint64 `json:"boots"`
}

// Open returns an empty table configured by cfg, as New does, but reports
// an invalid cfg as an error instead of panicking, and, if cfg.StateDir is
// set, reads the node's boot record there to choose the restart grace
// period (see Config.QuietPeriod and Config.StateDir) and writes it before it
// returns. Close then records whether the table held a live grant.
func Open(cfg Config) (*Local, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.StateDir == "" {
		return newLocal(cfg, nil), nil
	}
	b, err := startBoot(cfg)
	if err != nil {
		return nil, err
	}
	return newLocal(cfg, b), nil
}

// boot is a table's boot record and where it lives.
type boot struct {
	path   string
	rec    bootRecord
	first  bool          // no record was found: the node's first start
	grace  time.Duration // the grace period chosen at start
	reason string        // why, in words
}

// startBoot reads the boot record of cfg.StateDir, chooses the grace period,
// and writes the record of this start.
func startBoot(cfg Config) (*boot, error) {
	d := cfg.withDefaults() // for Validity
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("locker: state directory: %w", err)
	}
	b := &boot{path: filepath.Join(cfg.StateDir, bootFile)}
	data, err := os.ReadFile(b.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		b.first = true
	case err != nil:
		return nil, fmt.Errorf("locker: boot record: %w", err)
	default:
		if err := json.Unmarshal(data, &b.rec); err != nil || b.rec.Format != 1 || b.rec.ID == "" || b.rec.Validity < 0 {
			return nil, fmt.Errorf("locker: boot record %s is corrupt (remove it only if no client can hold a lock granted by this node within its validity): %v", b.path, err)
		}
	}
	switch {
	case b.first:
		b.reason = "first start: no boot record"
		b.rec = bootRecord{Format: 1, ID: newNodeID()}
	case b.rec.Running:
		b.grace = max(d.Validity, b.rec.Validity)
		b.reason = "restart after the node stopped while it may have held grants"
	default:
		b.reason = "restart after a clean stop that left no grant"
	}
	if cfg.QuietPeriod > 0 {
		// Asked for explicitly: at least that, on every start.
		b.grace = max(b.grace, cfg.QuietPeriod)
	}
	if cfg.QuietPeriod < 0 {
		b.grace = 0
		b.reason = "grace period turned off (Config.QuietPeriod negative)"
	}
	b.rec.Running = true
	b.rec.Validity = max(d.Validity, b.grace)
	b.rec.Boots++
	if err := b.write(); err != nil {
		return nil, err
	}
	return b, nil
}

// write replaces the record on disk with b.rec.
func (b *boot) write() error {
	data, err := json.Marshal(b.rec)
	if err != nil {
		return fmt.Errorf("locker: boot record: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(b.path), bootFile+".*")
	if err != nil {
		return fmt.Errorf("locker: boot record: %w", err)
	}
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), b.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("locker: boot record: %w", err)
	}
	syncDir(filepath.Dir(b.path))
	return nil
}

// syncDir makes a rename in dir durable where the system allows it (not
// on Windows, where a directory cannot be opened for syncing).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// newNodeID returns 64 random bits in hex.
func newNodeID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newIncarnation returns 64 random bits, never all zero.
func newIncarnation() uint64 {
	for {
		var b [8]byte
		rand.Read(b[:])
		if v := binary.LittleEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

// BootInfo describes how a table started.
type BootInfo struct {
	// ID identifies the node: kept in the boot record when the table has a
	// StateDir, else drawn anew by every New or Open.
	ID string
	// Incarnation identifies this run of the table: drawn at random, never
	// zero, by every New or Open, whatever the boot record says. Refresh
	// answers given in the grace period name it
	// (RefreshReply.Incarnation), and the table grants only reclaims that
	// name it (LockArgs.Incarnation).
	Incarnation uint64
	// FirstStart reports that no boot record was found (or there is no
	// StateDir).
	FirstStart bool
	// Boots counts the starts recorded in StateDir (1 without one).
	Boots uint64
	// Grace is the restart grace period chosen at start.
	Grace time.Duration
	// Reason says why that grace, in words.
	Reason string
}

// Boot returns how the table started.
func (l *Local) Boot() BootInfo {
	return l.bootInfo
}

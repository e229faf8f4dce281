package locker

import "fmt"

// Limits are the bounds a table puts on each request: what Config's fields
// of the same names are, defaults applied. A server that decodes requests
// for the table may use them to bound what it allocates before the table
// sees the request (package rest does).
type Limits struct {
	MaxResources int // resources one request may name
	MaxNameLen   int // bytes of a resource name
	MaxUIDLen    int // bytes of a UID
	MaxLabelLen  int // bytes of each of a lock's Owner, Source and Holder
}

// LimitReporter is implemented by lockers that tell the bounds they put on
// requests. It is an optional capability, found by type assertion. Limits
// is safe for concurrent use and returns the same answer every time.
type LimitReporter interface {
	Limits() Limits
}

var _ LimitReporter = (*Local)(nil)

// Limits returns the table's bounds on requests. See LimitReporter.
func (l *Local) Limits() Limits {
	return Limits{
		MaxResources: l.cfg.MaxResources,
		MaxNameLen:   l.cfg.MaxNameLen,
		MaxUIDLen:    l.cfg.MaxUIDLen,
		MaxLabelLen:  l.cfg.MaxLabelLen,
	}
}

// checkUID refuses an empty UID, or one longer than Config.MaxUIDLen.
func (l *Local) checkUID(op, uid string) error {
	if uid == "" {
		return fmt.Errorf("%w: %s: empty uid", ErrInvalidArgs, op)
	}
	return l.checkUIDLen(op, uid)
}

// checkUIDLen refuses a UID longer than Config.MaxUIDLen.
func (l *Local) checkUIDLen(op, uid string) error {
	if len(uid) > l.cfg.MaxUIDLen {
		return fmt.Errorf("%w: %s: uid of %d bytes, more than the limit of %d (MaxUIDLen)", ErrInvalidArgs, op, len(uid), l.cfg.MaxUIDLen)
	}
	return nil
}

// checkNames refuses no names, more than Config.MaxResources of them, and
// a name that is empty or longer than Config.MaxNameLen.
func (l *Local) checkNames(op string, names []string) error {
	n := len(names)
	if n == 0 {
		return fmt.Errorf("%w: %s: no resources", ErrInvalidArgs, op)
	}
	if n > l.cfg.MaxResources {
		return fmt.Errorf("%w: %s: %d resources, more than the limit of %d (MaxResources)", ErrInvalidArgs, op, n, l.cfg.MaxResources)
	}
	for _, r := range names {
		if r == "" {
			return fmt.Errorf("%w: %s: empty resource name", ErrInvalidArgs, op)
		}
		if len(r) > l.cfg.MaxNameLen {
			return fmt.Errorf("%w: %s: resource name of %d bytes, more than the limit of %d (MaxNameLen)", ErrInvalidArgs, op, len(r), l.cfg.MaxNameLen)
		}
	}
	return nil
}

// checkLabel refuses a label (an Owner, Source or Holder, named by field)
// longer than Config.MaxLabelLen.
func (l *Local) checkLabel(op, field, v string) error {
	if len(v) > l.cfg.MaxLabelLen {
		return fmt.Errorf("%w: %s: %s of %d bytes, more than the limit of %d (MaxLabelLen)", ErrInvalidArgs, op, field, len(v), l.cfg.MaxLabelLen)
	}
	return nil
}

// checkLabels refuses lock arguments whose Owner, Source or Holder is
// longer than Config.MaxLabelLen.
func (l *Local) checkLabels(op string, args *LockArgs) error {
	if err := l.checkLabel(op, "owner", args.Owner); err != nil {
		return err
	}
	if err := l.checkLabel(op, "source", args.Source); err != nil {
		return err
	}
	return l.checkLabel(op, "holder", args.Holder)
}

// ceilDiv returns a/b rounded up, for positive a and b.
func ceilDiv(a, b int) int { return (a + b - 1) / b }

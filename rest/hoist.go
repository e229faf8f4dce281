package rest

// hoist moves the Owner and Source that a's lock and rlock operations
// share into a.Owner and a.Source, and leaves them out of the operations
// that have them: the first such operation's owner (source) becomes the
// batch's, if every lock and rlock operation names one. inherit undoes it:
// a.inherit() after a.hoist() gives every operation back what it had.
func (a *BatchArgs) hoist() {
	a.Owner, a.Source = "", ""
	owner, source := "", ""
	// An operation without an owner (source) would inherit the batch's:
	// then that field stays on every operation.
	everyOwner, everySource := true, true
	for i := range a.Ops {
		op := &a.Ops[i]
		if !namesOrigin(op.Verb) {
			continue
		}
		if op.Lock.Owner == "" {
			everyOwner = false
		} else if owner == "" {
			owner = op.Lock.Owner
		}
		if op.Lock.Source == "" {
			everySource = false
		} else if source == "" {
			source = op.Lock.Source
		}
	}
	if !everyOwner {
		owner = ""
	}
	if !everySource {
		source = ""
	}
	if owner == "" && source == "" {
		return
	}
	a.Owner, a.Source = owner, source
	for i := range a.Ops {
		op := &a.Ops[i]
		if !namesOrigin(op.Verb) {
			continue
		}
		if owner != "" && op.Lock.Owner == owner {
			op.Lock.Owner = ""
		}
		if source != "" && op.Lock.Source == source {
			op.Lock.Source = ""
		}
	}
}

// inherit gives every lock and rlock operation of a that names no Owner
// (Source) the batch's. See hoist.
func (a *BatchArgs) inherit() {
	if a.Owner == "" && a.Source == "" {
		return
	}
	for i := range a.Ops {
		op := &a.Ops[i]
		if !namesOrigin(op.Verb) {
			continue
		}
		if op.Lock.Owner == "" {
			op.Lock.Owner = a.Owner
		}
		if op.Lock.Source == "" {
			op.Lock.Source = a.Source
		}
	}
}

// namesOrigin reports whether the table keeps the owner and source of an
// operation of verb v.
func namesOrigin(v Verb) bool { return v == VerbLock || v == VerbRLock }

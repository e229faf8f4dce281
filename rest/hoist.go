package rest

// Hoisting: a batch names the Owner and Source that its lock and rlock
// operations share once, in BatchArgs.Owner and BatchArgs.Source, and leaves
// them out of the operations that have them. The client chooses them as it
// encodes (see batchOrigin and appendBatch); the node gives them back to
// the operations with inherit.

// inherit gives every lock and rlock operation of a that names no Owner
// (Source) the batch's. It undoes what appendBatch does to operations:
// decoding a batch that appendBatch wrote and calling inherit gives every
// operation back the owner and source its call had.
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

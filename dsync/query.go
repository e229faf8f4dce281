package dsync

import (
	"context"
	"fmt"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// checkQueriers reports ErrQueryUnsupported, naming the first locker of ds
// that cannot answer queries, or nil.
func (ds *Dsync) checkQueriers() error {
	for _, l := range ds.lockers {
		if _, ok := l.(locker.Querier); !ok {
			return fmt.Errorf("%w: %s", ErrQueryUnsupported, l)
		}
	}
	return nil
}

// queryAll asks every node at once who holds names, each call bounded by
// CallTimeout. answers[i] is node i's reply, or nil if it did not answer;
// errs holds why nodes did not. Every locker must be a locker.Querier (see
// checkQueriers).
func (ds *Dsync) queryAll(ctx context.Context, names []string) (answers []*locker.QueryReply, answered int, errs []error) {
	callCtx, cancel := clock.WithTimeout(ctx, ds.clk(), ds.cfg.CallTimeout)
	defer cancel()
	type result struct {
		node  int
		reply locker.QueryReply
		err   error
	}
	ch := make(chan result, len(ds.lockers))
	for i, l := range ds.lockers {
		go func() {
			r, err := l.(locker.Querier).Query(callCtx, locker.QueryArgs{Resources: names})
			if err == nil && len(r.Resources) != len(names) {
				err = fmt.Errorf("%d answers to a query of %d resources", len(r.Resources), len(names))
			}
			ch <- result{i, r, err}
		}()
	}
	answers = make([]*locker.QueryReply, len(ds.lockers))
	for range ds.lockers {
		r := <-ch
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ds.lockers[r.node], r.err))
			continue
		}
		answers[r.node] = &r.reply
		answered++
	}
	return answers, answered, errs
}

// confirm asks every node at once whether it holds uid, as a refresh does
// (which also extends the grant where it is held), each call bounded by
// CallTimeout. It returns how many nodes hold it and how many answered that
// they do not; the rest did not answer, or answered that they do not hold it
// while in their restart grace period (the refresher reclaims it there: that
// is no evidence that it was lost).
func (ds *Dsync) confirm(ctx context.Context, uid string) (held, notHeld int) {
	callCtx, cancel := clock.WithTimeout(ctx, ds.clk(), ds.cfg.CallTimeout)
	defer cancel()
	answers := make(chan locker.RefreshStatus, len(ds.lockers))
	for _, l := range ds.lockers {
		go func() {
			r, err := l.Refresh(callCtx, locker.RefreshArgs{UIDs: []string{uid}})
			if err != nil || len(r.Status) != 1 || (r.Status[0] == locker.RefreshNotHeld && r.Grace > 0) {
				answers <- locker.RefreshUnknown
				return
			}
			answers <- r.Status[0]
		}()
	}
	for range ds.lockers {
		switch <-answers {
		case locker.RefreshRefreshed:
			held++
		case locker.RefreshNotHeld:
			notHeld++
		}
	}
	return held, notHeld
}

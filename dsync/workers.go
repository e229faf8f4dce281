package dsync

import "sync"

// maxIdleWorkers bounds the goroutines kept waiting for work.
const maxIdleWorkers = 4096

// workers runs node calls on goroutines that are kept between calls. A call
// that blocks on the network needs a goroutine of its own; starting a fresh
// one per call, per node, per lock costs a goroutine creation and, worse,
// growing its stack through the transport's deep call path every time. Kept
// goroutines keep their grown stacks. When none is idle a new one starts, so
// a call never waits for a worker.
type workers struct {
	mu     sync.Mutex    // guards idle and closed
	idle   []chan func() // parked workers, each waiting on its own channel
	closed bool
}

// run runs f on a worker goroutine.
func (p *workers) run(f func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		ch := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		ch <- f // buffered: never blocks
		return
	}
	p.mu.Unlock()
	go p.work(f)
}

func (p *workers) work(f func()) {
	var ch chan func()
	for {
		f()
		p.mu.Lock()
		if p.closed || len(p.idle) >= maxIdleWorkers {
			p.mu.Unlock()
			return
		}
		if ch == nil {
			ch = make(chan func(), 1)
		}
		p.idle = append(p.idle, ch)
		p.mu.Unlock()
		if f = <-ch; f == nil { // closed
			return
		}
	}
}

// close ends the parked workers; workers busy now end after their call.
func (p *workers) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, ch := range p.idle {
		close(ch)
	}
	p.idle = nil
}

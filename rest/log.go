package rest

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/dsync-go/dsync/clock"
)

// rateLog is the fasthttp server's logger: it writes what fasthttp says
// about connections it could not serve (malformed requests, bodies over the
// limit, timeouts) to a slog.Logger at Warn level, at most logBurst lines at
// once and logRate lines a second after that. The lines it drops are
// counted, and the next line it writes says how many: a peer that sends
// garbage as fast as it can costs the node a few lines a second, not its
// disk.
type rateLog struct {
	log *slog.Logger
	clk clock.Clock

	mu      sync.Mutex // guards the fields below
	tokens  float64
	last    time.Time
	dropped int
}

// The rate of rateLog.
const (
	logRate  = 5  // lines a second, in the long run
	logBurst = 20 // lines at once
)

func newRateLog(log *slog.Logger, clk clock.Clock) *rateLog {
	return &rateLog{log: log, clk: clk, tokens: logBurst, last: clk.Now()}
}

// Printf implements fasthttp.Logger. A body refused for its size says
// nothing: the gate refuses every request without credentials so (see
// gate.go), and the peer has its answer.
func (l *rateLog) Printf(format string, args ...any) {
	for _, a := range args {
		if err, ok := a.(error); ok && errors.Is(err, fasthttp.ErrBodyTooLarge) {
			return
		}
	}
	l.mu.Lock()
	now := l.clk.Now()
	l.tokens = min(logBurst, l.tokens+now.Sub(l.last).Seconds()*logRate)
	l.last = now
	if l.tokens < 1 {
		l.dropped++
		l.mu.Unlock()
		return
	}
	l.tokens--
	dropped := l.dropped
	l.dropped = 0
	l.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	if len(msg) > 512 {
		msg = msg[:512] + "..." // a request's bytes may be quoted: keep lines short
	}
	if dropped > 0 {
		l.log.Warn("dsync node: http server: "+msg, slog.Int("dropped_before", dropped))
		return
	}
	l.log.Warn("dsync node: http server: " + msg)
}

package rest

// coalescer sends the calls of one client. Phase 1: every call alone.
type coalescer struct {
	c *Client
}

func (co *coalescer) init(c *Client) { co.c = c }

func (co *coalescer) submit(cl *call) {
	go func() {
		co.c.sendOne(cl)
		co.c.answer(cl)
	}()
}

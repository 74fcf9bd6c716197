package raftnode

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// QueryTimeError is returned when Config.MaxQueryTime stopped a local read.
type QueryTimeError struct {
	// Limit is the node's MaxQueryTime.
	Limit time.Duration
}

func (e *QueryTimeError) Error() string {
	return fmt.Sprintf("the read ran longer than this node's query time limit (--max-query-time %v) and was interrupted", e.Limit)
}

// errQueryTime is the cause of a read that MaxQueryTime stopped.
var errQueryTime = errors.New("query time limit reached")

// withQueryTime bounds a local read by MaxQueryTime (the caller's deadline
// still applies when it is sooner). go-sqlite3 interrupts the running
// statement (sqlite3_interrupt) when the context ends.
func (n *Node) withQueryTime(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, n.cfg.MaxQueryTime, errQueryTime)
}

// queryTimeError turns the error of a read that ctx's query time limit
// stopped into a *QueryTimeError; other errors pass.
func (n *Node) queryTimeError(ctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), errQueryTime) {
		return &QueryTimeError{Limit: n.cfg.MaxQueryTime}
	}
	return err
}

// streamClock bounds a stream by MaxQueryTime between messages: the
// statement may take that long to produce each batch, but time spent
// waiting for the client to take a message (flow control) is not counted,
// so a large result read by a steady client is never cut off.
type streamClock struct {
	d     time.Duration
	timer *time.Timer
}

// newStreamClock returns a context that ends when the statement has run for
// MaxQueryTime without a message being handed to the client.
func (n *Node) newStreamClock(ctx context.Context) (context.Context, *streamClock, context.CancelFunc) {
	sctx, cancel := context.WithCancelCause(ctx)
	c := &streamClock{d: n.cfg.MaxQueryTime}
	c.timer = time.AfterFunc(c.d, func() { cancel(errQueryTime) })
	return sctx, c, func() { c.timer.Stop(); cancel(nil) }
}

// sending pauses the clock while fn hands a message to the client.
func (c *streamClock) sending(fn func() error) error {
	if !c.timer.Stop() {
		return fn() // already fired: the statement is being interrupted
	}
	defer c.timer.Reset(c.d)
	return fn()
}

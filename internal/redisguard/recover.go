package redisguard

// Recovery: the guard's goroutine, which checks Redis when commands fail,
// probes it while the circuit is open, runs the recovery steps when it
// answers again and the announcements once the circuit has closed, and
// retries the steps that failed.

import (
	"context"
	"time"
)

// maxRepairInterval caps the wait between attempts of a recovery step that
// keeps failing while Redis answers: an error line and a command every
// few seconds through a long refusal (Redis out of memory, or read-only
// after a failover), and the step done soon after the refusal ends.
const maxRepairInterval = 5 * time.Second

// repair is a recovery step and where it stands. Once added, its fields
// but fn belong to the guard's goroutine.
type repair struct {
	fn func(context.Context) error
	// owed: the step has not succeeded since the circuit last opened.
	owed bool
	// fails counts its failed attempts in a row; due is when it may be
	// tried again.
	fails int
	due   time.Time
}

// run is the guard's goroutine: it checks Redis when asked to, and
// retries the recovery steps that failed, until Close. One goroutine, so
// that no step ever runs twice at once.
func (g *Guard) run() {
	defer g.running.Done()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		var retryC <-chan time.Time
		if due, ok := g.nextRepair(); ok {
			retry.Reset(time.Until(due))
			retryC = retry.C
		}
		select {
		case <-g.stop:
			return
		case cause := <-g.suspects:
			g.check(cause)
			// Failures seen while the check ran asked for another; this
			// one has answered them.
			select {
			case <-g.suspects:
			default:
			}
		case <-retryC:
			g.runRepairs(context.Background())
		}
		retry.Stop()
	}
}

// check tells a slow Redis from one that does not answer: it pings with
// the longer VerifyTimeout, and a Redis that answers is left alone
// (commands that timed out meanwhile went to PostgreSQL one by one).
// One that does not gets the circuit opened, and is pinged every
// ProbeInterval until it answers; then the circuit closes (closeCircuit).
func (g *Guard) check(cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), g.opts.VerifyTimeout)
	err := g.ping(ctx)
	cancel()
	if err == nil {
		g.failures.Store(0)
		return
	}
	g.mu.Lock()
	g.open.Store(true)
	// Any write may have been lost in this outage: every step is owed
	// anew, and tried as soon as Redis answers.
	for _, r := range g.repairs {
		r.owed, r.fails, r.due = true, 0, time.Time{}
	}
	close(g.opened)
	g.mu.Unlock()
	g.opens.Inc()
	g.healthy.Set(0)
	g.log.Warn("redis: not answering; circuit open, reads go to PostgreSQL until it recovers", "err", cause, "ping", err)
	tick := time.NewTicker(g.opts.ProbeInterval)
	defer tick.Stop()
	started := time.Now()
	for {
		select {
		case <-g.stop:
			return
		case <-tick.C:
		}
		if g.answers() {
			break
		}
	}
	g.closeCircuit(started)
}

// answers reports whether Redis answers a probe's PING.
func (g *Guard) answers() bool {
	ctx, cancel := context.WithTimeout(context.Background(), g.stepTimeout())
	defer cancel()
	return g.ping(ctx) == nil
}

// stepTimeout bounds a probe, and each recovery step.
func (g *Guard) stepTimeout() time.Duration { return max(g.opts.Timeout, 200*time.Millisecond) }

// closeCircuit runs the recovery steps once Redis answers, closes the
// circuit, then runs the announcements. It closes even if a step failed: Redis answers, and the step
// is retried on its own (run) rather than with every probe, which ran the
// steps that had succeeded again each time (a bus gap to every subscriber
// every 50 ms while one write was refused).
func (g *Guard) closeCircuit(started time.Time) {
	// The steps' commands pass the open circuit.
	pending := g.runRepairs(context.WithValue(context.Background(), probeKey{}, true))
	g.mu.Lock()
	g.failures.Store(0)
	g.open.Store(false)
	g.opened = make(chan struct{})
	announce := append([]func(){}, g.announce...)
	g.mu.Unlock()
	g.healthy.Set(1)
	g.log.Info("redis: answering again; circuit closed", "after", time.Since(started).Round(time.Millisecond), "steps_pending", pending)
	for _, fn := range announce {
		fn()
	}
}

// runRepairs runs the owed recovery steps that are due, in the order they
// were added, backs off those that fail, and returns how many are still
// owed.
func (g *Guard) runRepairs(base context.Context) int {
	now := time.Now()
	g.mu.Lock()
	repairs := append([]*repair(nil), g.repairs...)
	g.mu.Unlock()
	pending := 0
	for _, r := range repairs {
		if !r.owed {
			continue
		}
		if now.Before(r.due) {
			pending++
			continue
		}
		ctx, cancel := context.WithTimeout(base, g.stepTimeout())
		err := r.fn(ctx)
		cancel()
		if err == nil {
			if r.fails > 0 {
				g.log.Info("redis: recovery step done", "attempts", r.fails+1)
			}
			r.owed, r.fails = false, 0
			continue
		}
		pending++
		r.fails++
		wait := g.backoff(r.fails)
		r.due = time.Now().Add(wait)
		g.stepFailures.Inc()
		// Error, once per attempt: the attempts back off to one every
		// maxRepairInterval, and what the step repairs is not trusted
		// until it succeeds.
		g.log.Error("redis: recovery step failed; retrying it alone", "err", err, "attempt", r.fails, "retry_in", wait)
	}
	g.pending.Set(float64(pending))
	return pending
}

// backoff is the wait after a step's fails-th failure in a row: the probe
// interval, doubled after each failure, at most maxRepairInterval.
func (g *Guard) backoff(fails int) time.Duration {
	d := g.opts.ProbeInterval
	for i := 1; i < fails && d < maxRepairInterval; i++ {
		d *= 2
	}
	return min(d, maxRepairInterval)
}

// nextRepair returns when the next owed step is due, if one is.
func (g *Guard) nextRepair() (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var next time.Time
	found := false
	for _, r := range g.repairs {
		if r.owed && (!found || r.due.Before(next)) {
			next, found = r.due, true
		}
	}
	return next, found
}

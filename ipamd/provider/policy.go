package provider

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// ErrCircuitOpen: the cloud throttled, failed or could not be reached on too many calls in a
// row; calls fail fast until the circuit half-opens.
var ErrCircuitOpen = errors.New("cloud circuit open after repeated failures")

// PolicyConfig tunes Policy. Zero fields take the defaults.
type PolicyConfig struct {
	// MaxConcurrent cloud calls in flight. Default 4.
	MaxConcurrent int
	// BaseBackoff is the first retry's ceiling; each retry doubles it up to MaxBackoff; the
	// wait is uniformly random below the ceiling (full jitter). Defaults 50ms and 3s.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// MaxAttempts per call, the first included. Default 10.
	MaxAttempts int
	// NotFoundWindow: a NotFound answer is retried for this long after the call started, since
	// a resource just created may not be visible yet. Default 10s.
	NotFoundWindow time.Duration
	// BreakerThreshold consecutive failed calls open the circuit for BreakerCooldown (doubling
	// while failures continue, up to 8x). Only throttling, the cloud's own failures and
	// transport failures count; refusals do not. Defaults 5 and 2s.
	BreakerThreshold int
	BreakerCooldown  time.Duration
}

func (c PolicyConfig) withDefaults() PolicyConfig {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxConcurrent, 4)
	def(&c.MaxAttempts, 10)
	def(&c.BreakerThreshold, 5)
	defDur(&c.BaseBackoff, 50*time.Millisecond)
	defDur(&c.MaxBackoff, 3*time.Second)
	defDur(&c.NotFoundWindow, 10*time.Second)
	defDur(&c.BreakerCooldown, 2*time.Second)
	return c
}

// Policy wraps a Provider with ipamd's cloud call policy. It is itself a Provider.
type Policy struct {
	p   Provider
	cfg PolicyConfig
	sem chan struct{}

	mu        sync.Mutex
	failures  int
	openUntil time.Time
	opens     int
}

// NewPolicy wraps p.
func NewPolicy(p Provider, cfg PolicyConfig) *Policy {
	cfg = cfg.withDefaults()
	return &Policy{p: p, cfg: cfg, sem: make(chan struct{}, cfg.MaxConcurrent)}
}

// CircuitOpen reports whether calls currently fail fast, and until when.
func (p *Policy) CircuitOpen(now time.Time) (bool, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return now.Before(p.openUntil), p.openUntil
}

// retryable says whether err is worth another attempt at elapsed into the call.
func (p *Policy) retryable(err error, elapsed time.Duration) bool {
	return Retryable(err) || (errors.Is(err, ErrNotFound) && elapsed < p.cfg.NotFoundWindow)
}

func (p *Policy) admit() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if wait := time.Until(p.openUntil); wait > 0 {
		return fmt.Errorf("%w: retry in %v", ErrCircuitOpen, wait.Round(time.Millisecond))
	}
	return nil
}

func (p *Policy) record(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		p.failures, p.opens = 0, 0
		return
	}
	if !Retryable(err) && !errors.Is(err, ErrTransport) {
		// A refusal (a limit, a bad parameter, a late NotFound) or our own deadline says
		// nothing about the cloud's health: it neither opens the circuit nor closes it.
		return
	}
	p.failures++
	if p.failures >= p.cfg.BreakerThreshold {
		p.opens = min(p.opens+1, 4)
		p.openUntil = time.Now().Add(p.cfg.BreakerCooldown << (p.opens - 1))
		p.failures = 0
	}
}

// do runs one logical call with retries; fn is called once per attempt.
func (p *Policy) do(ctx context.Context, fn func(context.Context) error) error {
	if err := p.admit(); err != nil {
		return err
	}
	start := time.Now()
	ceiling := p.cfg.BaseBackoff
	var err error
	for attempt := 1; ; attempt++ {
		select {
		case p.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		err = fn(ctx)
		<-p.sem
		if err == nil || !p.retryable(err, time.Since(start)) || attempt >= p.cfg.MaxAttempts {
			break
		}
		t := time.NewTimer(rand.N(ceiling) + time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			p.record(err)
			return fmt.Errorf("%w (last cloud error: %w)", ctx.Err(), err)
		}
		ceiling = min(2*ceiling, p.cfg.MaxBackoff)
	}
	p.record(err)
	return err
}

// DescribeInstance implements Provider.
func (p *Policy) DescribeInstance(ctx context.Context, id string) (*Instance, error) {
	var out *Instance
	err := p.do(ctx, func(ctx context.Context) (err error) {
		out, err = p.p.DescribeInstance(ctx, id)
		return err
	})
	return out, err
}

// CreateInterface implements Provider; a request without a token gets one, kept across retries.
func (p *Policy) CreateInterface(ctx context.Context, req CreateInterfaceRequest) (*Interface, error) {
	if req.ClientToken == "" {
		req.ClientToken = NewToken()
	}
	var out *Interface
	err := p.do(ctx, func(ctx context.Context) (err error) {
		out, err = p.p.CreateInterface(ctx, req)
		return err
	})
	return out, err
}

// DeleteInterface implements Provider.
func (p *Policy) DeleteInterface(ctx context.Context, id string) error {
	return p.do(ctx, func(ctx context.Context) error { return p.p.DeleteInterface(ctx, id) })
}

// Assign implements Provider; a request without a token gets one, kept across retries.
func (p *Policy) Assign(ctx context.Context, req AssignRequest) (*Assigned, error) {
	if req.ClientToken == "" {
		req.ClientToken = NewToken()
	}
	var out *Assigned
	err := p.do(ctx, func(ctx context.Context) (err error) {
		out, err = p.p.Assign(ctx, req)
		return err
	})
	return out, err
}

// Unassign implements Provider; a request without a token gets one, kept across retries.
func (p *Policy) Unassign(ctx context.Context, req UnassignRequest) error {
	if req.ClientToken == "" {
		req.ClientToken = NewToken()
	}
	return p.do(ctx, func(ctx context.Context) error { return p.p.Unassign(ctx, req) })
}

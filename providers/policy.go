package providers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// ErrCircuitOpen: the cloud throttled, failed or could not be reached on too many calls in a
// row; calls fail fast until the circuit half-opens. It is not Retryable: the caller's own
// loop (ipamd's worker, the controller's requeue) comes back later.
var ErrCircuitOpen = errors.New("cloud circuit open after repeated failures: calls fail fast for a while")

// PolicyConfig tunes Policy. Zero fields take DefaultPolicy's; a negative NotFoundWindow or
// BreakerThreshold turns the NotFound retry or the breaker off.
type PolicyConfig struct {
	// MaxConcurrent cloud calls in flight. Default 4.
	MaxConcurrent int
	// Rate caps the calls (attempts) started per second, with bursts of up to Burst. Default:
	// no cap (the cloud's throttling answers, and backoff follows). Burst defaults to Rate,
	// at least 1.
	Rate  float64
	Burst int
	// BaseBackoff is the first retry's ceiling; each retry doubles it up to MaxBackoff; the
	// wait is uniformly random below the ceiling (full jitter). Defaults 50ms and 3s.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// MaxAttempts per call, the first included. Default 10.
	MaxAttempts int
	// NotFoundWindow: a NotFound answer is retried for this long after the call started, since
	// a resource just created may not be visible yet. Default 10s; negative: never.
	NotFoundWindow time.Duration
	// BreakerThreshold consecutive failed calls open the circuit for BreakerCooldown (doubling
	// while failures continue, up to 8x). Only Retryable failures count; refusals do not.
	// Defaults 5 and 2s; a negative threshold: no breaker.
	BreakerThreshold int
	BreakerCooldown  time.Duration
}

// Or returns c with its zero fields taken from def: a consumer's own defaults under what its
// user set.
func (c PolicyConfig) Or(def PolicyConfig) PolicyConfig {
	pick := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	pickDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	pick(&c.MaxConcurrent, def.MaxConcurrent)
	pick(&c.MaxAttempts, def.MaxAttempts)
	pick(&c.BreakerThreshold, def.BreakerThreshold)
	pick(&c.Burst, def.Burst)
	if c.Rate == 0 {
		c.Rate = def.Rate
	}
	pickDur(&c.BaseBackoff, def.BaseBackoff)
	pickDur(&c.MaxBackoff, def.MaxBackoff)
	pickDur(&c.NotFoundWindow, def.NotFoundWindow)
	pickDur(&c.BreakerCooldown, def.BreakerCooldown)
	return c
}

// DefaultPolicy is what a zero PolicyConfig means.
var DefaultPolicy = PolicyConfig{
	MaxConcurrent: 4, MaxAttempts: 10, BaseBackoff: 50 * time.Millisecond, MaxBackoff: 3 * time.Second,
	NotFoundWindow: 10 * time.Second, BreakerThreshold: 5, BreakerCooldown: 2 * time.Second,
}

func (c PolicyConfig) withDefaults() PolicyConfig {
	c = c.Or(DefaultPolicy)
	c.MaxConcurrent = max(c.MaxConcurrent, 1)
	c.MaxAttempts = max(c.MaxAttempts, 1)
	c.BaseBackoff = max(c.BaseBackoff, time.Millisecond)
	c.MaxBackoff = max(c.MaxBackoff, c.BaseBackoff)
	if c.Rate > 0 && c.Burst <= 0 {
		c.Burst = max(int(c.Rate), 1)
	}
	return c
}

// Policy is the one place where cloud calls get retries with backoff and jitter, a rate limit,
// a concurrency cap, a circuit breaker and (through the IPAM and LoadBalancing wrappers)
// idempotency tokens. What is worth retrying is Retryable's to say, plus NotFound for a short
// window. One Policy is shared by every call a consumer makes to one cloud.
type Policy struct {
	cfg   PolicyConfig
	sem   chan struct{}
	limit *bucket

	mu        sync.Mutex
	failures  int
	openUntil time.Time
	opens     int
}

// NewPolicy returns a policy tuned by cfg.
func NewPolicy(cfg PolicyConfig) *Policy {
	cfg = cfg.withDefaults()
	p := &Policy{cfg: cfg, sem: make(chan struct{}, cfg.MaxConcurrent)}
	if cfg.Rate > 0 {
		p.limit = newBucket(cfg.Rate, cfg.Burst)
	}
	return p
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
	if p.cfg.BreakerThreshold < 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		p.failures, p.opens = 0, 0
		return
	}
	if !Retryable(err) {
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

// Do runs one logical call with retries; fn is called once per attempt and must be safe to
// repeat (creates carry a client token the attempts share).
func (p *Policy) Do(ctx context.Context, fn func(context.Context) error) error {
	if err := p.admit(); err != nil {
		return err
	}
	start := time.Now()
	ceiling := p.cfg.BaseBackoff
	var err error
	for attempt := 1; ; attempt++ {
		if aerr := p.acquire(ctx); aerr != nil {
			if err == nil {
				return aerr
			}
			return fmt.Errorf("%w (last cloud error: %w)", aerr, err)
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

// acquire waits for the rate limit and a concurrency slot.
func (p *Policy) acquire(ctx context.Context) error {
	if p.limit != nil {
		if err := p.limit.wait(ctx); err != nil {
			return err
		}
	}
	select {
	case p.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// bucket is a token bucket: rate tokens a second, at most burst saved up.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

// wait takes one token, waiting for it as long as ctx allows.
func (b *bucket) wait(ctx context.Context) error {
	for {
		b.mu.Lock()
		now := time.Now()
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
		if b.tokens >= 1 {
			b.tokens--
			b.mu.Unlock()
			return nil
		}
		need := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
		b.mu.Unlock()
		t := time.NewTimer(max(need, time.Millisecond))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

package throttle

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// Limit is one bucket's shape: it holds at most Burst tokens and gains Rate tokens per second.
// A call takes one token.
type Limit struct {
	Burst int
	Rate  float64
}

// Validate reports what is wrong with l.
func (l Limit) Validate() error {
	if l.Burst < 1 {
		return fmt.Errorf("burst %d must be at least 1", l.Burst)
	}
	if !(l.Rate > 0) || math.IsInf(l.Rate, 0) {
		return fmt.Errorf("rate %v must be a positive number of tokens per second", l.Rate)
	}
	return nil
}

// Config configures a Limiter.
type Config struct {
	// Disabled lets every call through.
	Disabled bool
	// Overrides replaces the default limit of the named actions ("*" for every action). The
	// unfiltered and filtered buckets of a describe share an override.
	Overrides map[string]Limit
}

// Validate reports the first invalid override.
func (c Config) Validate() error {
	for action, l := range c.Overrides {
		if err := l.Validate(); err != nil {
			return fmt.Errorf("throttle override for %q: %w", action, err)
		}
	}
	return nil
}

// Limiter keeps the buckets. It is safe for concurrent use.
type Limiter struct {
	cfg Config

	mu      sync.Mutex
	buckets map[key]*bucket
	inserts int
}

type key struct {
	principal  string
	action     string
	unfiltered bool
}

// sweepEvery is how many new buckets trigger dropping the full ones (a full bucket is the same
// as no bucket), so that callers that come and go do not grow the map forever.
const sweepEvery = 4096

// New returns a Limiter. cfg must be valid (see Config.Validate).
func New(cfg Config) *Limiter {
	return &Limiter{cfg: cfg, buckets: make(map[key]*bucket)}
}

// Allow takes a token from the bucket of (principal, action) at time now. unfiltered marks a
// describe that names no resource, no filter and no page size: those have a smaller bucket of
// their own. When the bucket is empty it returns false and how long until a token is back.
func (l *Limiter) Allow(principal, action string, unfiltered bool, now time.Time) (bool, time.Duration) {
	if l.cfg.Disabled {
		return true, 0
	}
	lim := l.limitFor(action, unfiltered)
	k := key{principal: principal, action: action, unfiltered: unfiltered && hasUnfilteredBucket(action)}

	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[k]
	if !ok {
		l.maybeSweep(now)
		b = &bucket{tokens: float64(lim.Burst), last: now}
		l.buckets[k] = b
	}
	return b.take(lim, now)
}

func (l *Limiter) limitFor(action string, unfiltered bool) Limit {
	if o, ok := l.cfg.Overrides[action]; ok {
		return o
	}
	if o, ok := l.cfg.Overrides["*"]; ok {
		return o
	}
	return DefaultLimit(action, unfiltered)
}

func (l *Limiter) maybeSweep(now time.Time) {
	l.inserts++
	if l.inserts%sweepEvery != 0 {
		return
	}
	for k, b := range l.buckets {
		if b.fullAt(l.limitFor(k.action, k.unfiltered), now) {
			delete(l.buckets, k)
		}
	}
}

// epsilon absorbs float rounding in token arithmetic.
const epsilon = 1e-6

// bucket is a token bucket refilled lazily from the time of its last use.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) refill(lim Limit, now time.Time) {
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = math.Min(float64(lim.Burst), b.tokens+elapsed.Seconds()*lim.Rate)
		b.last = now
	}
	// A clock that steps back adds nothing; the bucket keeps its time.
}

func (b *bucket) take(lim Limit, now time.Time) (bool, time.Duration) {
	b.refill(lim, now)
	if b.tokens >= 1-epsilon {
		b.tokens = math.Max(0, b.tokens-1)
		return true, 0
	}
	// Whole microseconds, so float noise never shows up as a nanosecond more to wait.
	micros := math.Ceil((1-b.tokens)/lim.Rate*1e6 - epsilon)
	return false, time.Duration(micros) * time.Microsecond
}

func (b *bucket) fullAt(lim Limit, now time.Time) bool {
	probe := *b
	probe.refill(lim, now)
	return probe.tokens >= float64(lim.Burst)
}

// Default limits, as a real cloud documents them (see docs/fakecloud-api.md).
var (
	describeLimit           = Limit{Burst: 100, Rate: 20}
	describeUnfilteredLimit = Limit{Burst: 50, Rate: 10}
	addressLimit            = Limit{Burst: 100, Rate: 5}
	mutatingLimit           = Limit{Burst: 50, Rate: 5}
	tagLimit                = Limit{Burst: 100, Rate: 10}
	runInstancesLimit       = Limit{Burst: 5, Rate: 2}
)

// DefaultLimit is the bucket of an action absent any override.
func DefaultLimit(action string, unfiltered bool) Limit {
	switch action {
	case api.ActionDescribeNetworkInterfaces, api.ActionDescribeInstances:
		if unfiltered {
			return describeUnfilteredLimit
		}
		return describeLimit
	case api.ActionDescribeVpcs, api.ActionDescribeSubnets, api.ActionDescribeInstanceTypes:
		return describeLimit
	case api.ActionAssignPrivateIPAddresses, api.ActionUnassignPrivateIPAddresses,
		api.ActionCreateNetworkInterface, api.ActionDeleteNetworkInterface,
		api.ActionModifyNetworkInterfaceAttribute:
		return addressLimit
	case api.ActionCreateTags, api.ActionDeleteTags:
		return tagLimit
	case api.ActionRunInstances:
		return runInstancesLimit
	}
	if isRead(action) {
		return describeLimit
	}
	return mutatingLimit
}

func hasUnfilteredBucket(action string) bool {
	return action == api.ActionDescribeNetworkInterfaces || action == api.ActionDescribeInstances
}

func isRead(action string) bool {
	return strings.HasPrefix(action, "Describe") || strings.HasPrefix(action, "List") ||
		strings.HasPrefix(action, "Get")
}

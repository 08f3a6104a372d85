package providers_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flatnet/flatnet/providers"
)

// failing is a Provider whose every call fails with err.
type failing struct{ err error }

func (f failing) DescribeInstance(context.Context, string) (*providers.Instance, error) {
	return nil, f.err
}

func (f failing) CreateInterface(context.Context, providers.CreateInterfaceRequest) (*providers.Interface, error) {
	return nil, f.err
}
func (f failing) DeleteInterface(context.Context, string) error { return f.err }
func (f failing) Assign(context.Context, providers.AssignRequest) (*providers.Assigned, error) {
	return nil, f.err
}
func (f failing) Unassign(context.Context, providers.UnassignRequest) error { return f.err }

func cloudErr(kind error, code string) error {
	return &providers.Error{Kind: kind, Code: code, Err: fmt.Errorf("cloud says %s", code)}
}

// TestBreakerCountsOnlyTransientFailures: refusals (limits, bad parameters, a NotFound past
// its window) and the caller's own deadline never open the circuit; throttling, the cloud's
// failures and transport failures do, after BreakerThreshold calls in a row.
func TestBreakerCountsOnlyTransientFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		opens bool
	}{
		{"address limit", cloudErr(providers.ErrAddressLimit, "PrivateIpAddressLimitExceeded"), false},
		{"interface limit", cloudErr(providers.ErrInterfaceLimit, "AttachmentLimitExceeded"), false},
		{"subnet full", cloudErr(providers.ErrSubnetFull, "InsufficientFreeAddresses"), false},
		{"bad parameter", cloudErr(providers.ErrInvalid, "InvalidParameterValue"), false},
		{"conflict", cloudErr(providers.ErrConflict, "InvalidIPAddress.InUse"), false},
		{"late not found", cloudErr(providers.ErrNotFound, "InvalidNetworkInterfaceID.NotFound"), false},
		{"deadline", context.DeadlineExceeded, false},
		{"throttled", cloudErr(providers.ErrThrottled, "RequestLimitExceeded"), true},
		{"unavailable", cloudErr(providers.ErrTransient, "InternalError"), true},
		{"transport", &providers.Error{Kind: providers.ErrTransient, Err: errors.New("connection refused")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := providers.NewPolicy(providers.PolicyConfig{
				MaxAttempts: 1, BreakerThreshold: 3, BreakerCooldown: time.Hour, NotFoundWindow: time.Nanosecond,
			})
			ctx := context.Background()
			for i := range 10 {
				err := p.IPAM(failing{tc.err}).Unassign(ctx, providers.UnassignRequest{InterfaceID: "eni-1"})
				if errors.Is(err, providers.ErrCircuitOpen) {
					if !tc.opens {
						t.Fatalf("call %d: circuit open after %v", i+1, tc.err)
					}
					if i != 3 {
						t.Fatalf("circuit opened at call %d; want after 3 failures", i+1)
					}
					return
				}
				if !errors.Is(err, tc.err) {
					t.Fatalf("call %d: %v; want the driver's error", i+1, err)
				}
			}
			if open, _ := p.CircuitOpen(time.Now()); open != tc.opens {
				t.Fatalf("circuit open %v after 10 failures with %v; want %v", open, tc.err, tc.opens)
			}
		})
	}
}

// scripted is an IPAM whose Assign answers from errs in turn (then succeeds), recording each
// attempt's token; its other calls block until released, counting how many run at once.
type scripted struct {
	failing
	mu       sync.Mutex
	errs     []error
	tokens   []string
	inFlight int
	maxSeen  int
	release  chan struct{}
}

func (s *scripted) Assign(_ context.Context, req providers.AssignRequest) (*providers.Assigned, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = append(s.tokens, req.ClientToken)
	if len(s.errs) == 0 {
		return &providers.Assigned{}, nil
	}
	err := s.errs[0]
	s.errs = s.errs[1:]
	return nil, err
}

func (s *scripted) DeleteInterface(context.Context, string) error {
	s.mu.Lock()
	s.inFlight++
	s.maxSeen = max(s.maxSeen, s.inFlight)
	s.mu.Unlock()
	<-s.release
	s.mu.Lock()
	s.inFlight--
	s.mu.Unlock()
	return nil
}

var fast = providers.PolicyConfig{BaseBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, BreakerThreshold: -1}

// TestPolicyRetries: what Retryable says (and NotFound within its window) is repeated, with the
// same client token, up to MaxAttempts; anything else is answered at once.
func TestPolicyRetries(t *testing.T) {
	throttled := cloudErr(providers.ErrThrottled, "RequestLimitExceeded")
	transport := &providers.Error{Kind: providers.ErrTransient, Err: errors.New("connection reset")}
	notFound := cloudErr(providers.ErrNotFound, "InvalidNetworkInterfaceID.NotFound")
	limit := cloudErr(providers.ErrAddressLimit, "PrivateIpAddressLimitExceeded")
	for _, tc := range []struct {
		name     string
		cfg      providers.PolicyConfig
		errs     []error
		attempts int
		want     error // nil: success
	}{
		{"throttled then fine", fast, []error{throttled, throttled}, 3, nil},
		{"transport then fine", fast, []error{transport}, 2, nil},
		{"not found then visible", fast, []error{notFound}, 2, nil},
		{"not found, no window", withCfg(fast, func(c *providers.PolicyConfig) { c.NotFoundWindow = -1 }), []error{notFound}, 1, notFound},
		{"limit", fast, []error{limit}, 1, limit},
		{"attempts run out", withCfg(fast, func(c *providers.PolicyConfig) { c.MaxAttempts = 2 }), []error{throttled, throttled, throttled}, 2, throttled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &scripted{errs: tc.errs}
			_, err := providers.NewPolicy(tc.cfg).IPAM(s).Assign(context.Background(), providers.AssignRequest{InterfaceID: "eni-1", IPCount: 1})
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err %v; want %v", err, tc.want)
			}
			if len(s.tokens) != tc.attempts {
				t.Fatalf("%d attempts; want %d", len(s.tokens), tc.attempts)
			}
			for _, tok := range s.tokens {
				if tok == "" || tok != s.tokens[0] {
					t.Fatalf("tokens %q: want one non-empty token kept across attempts", s.tokens)
				}
			}
		})
	}
}

func withCfg(c providers.PolicyConfig, f func(*providers.PolicyConfig)) providers.PolicyConfig {
	f(&c)
	return c
}

// TestPolicyGivesUpWithTheContext: a call whose context ends while it backs off returns the
// context's error and the cloud's last one, both for errors.Is.
func TestPolicyGivesUpWithTheContext(t *testing.T) {
	throttled := cloudErr(providers.ErrThrottled, "RequestLimitExceeded")
	s := &scripted{errs: []error{throttled, throttled, throttled, throttled}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	p := providers.NewPolicy(providers.PolicyConfig{BaseBackoff: time.Second, MaxBackoff: time.Second, BreakerThreshold: -1})
	_, err := p.IPAM(s).Assign(ctx, providers.AssignRequest{InterfaceID: "eni-1"})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, providers.ErrThrottled) {
		t.Fatalf("err %v; want the deadline and the last throttle", err)
	}
	if providers.Retryable(err) {
		t.Fatalf("%v is retryable; the caller's own deadline is not", err)
	}
}

// TestPolicyRateLimit: Rate caps the attempts started per second, after a burst.
func TestPolicyRateLimit(t *testing.T) {
	p := providers.NewPolicy(providers.PolicyConfig{Rate: 50, Burst: 2}).IPAM(&scripted{})
	start := time.Now()
	for range 7 {
		if _, err := p.Assign(context.Background(), providers.AssignRequest{InterfaceID: "eni-1"}); err != nil {
			t.Fatal(err)
		}
	}
	// 2 at once, then 5 at 50/s: at least 100 ms.
	if took := time.Since(start); took < 90*time.Millisecond {
		t.Fatalf("7 calls at 50/s with a burst of 2 took %v; want at least 100ms", took)
	}
}

// TestPolicyConcurrencyCap: no more than MaxConcurrent calls are in the driver at once.
func TestPolicyConcurrencyCap(t *testing.T) {
	s := &scripted{release: make(chan struct{})}
	p := providers.NewPolicy(providers.PolicyConfig{MaxConcurrent: 2}).IPAM(s)
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() { _ = p.DeleteInterface(context.Background(), "eni-1") })
	}
	// Two calls in the driver, then a while for a third to get in were the cap broken.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		n := s.inFlight
		s.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls in the driver after 10 s; want 2", n)
		}
	}
	time.Sleep(50 * time.Millisecond)
	close(s.release)
	wg.Wait()
	if s.maxSeen != 2 {
		t.Fatalf("%d calls in flight at most; want 2", s.maxSeen)
	}
}

// lbRecorder is a LoadBalancing that records the client tokens it gets and fails its first
// create with a throttle.
type lbRecorder struct {
	providers.LoadBalancing // nil: calls not overridden panic
	tokens                  []string
	watched                 bool
}

func (r *lbRecorder) CreateLoadBalancer(_ context.Context, spec providers.LoadBalancerSpec) (providers.LoadBalancer, error) {
	r.tokens = append(r.tokens, spec.ClientToken)
	if len(r.tokens) == 1 {
		return providers.LoadBalancer{}, cloudErr(providers.ErrThrottled, "Throttling")
	}
	return providers.LoadBalancer{ID: "lb-1", Name: spec.Name}, nil
}

func (r *lbRecorder) WatchHealth(context.Context, func(providers.HealthEvent)) error {
	r.watched = true
	return nil
}

// TestPolicyLoadBalancing: the same policy wraps lbcontroller's interface: a create without a
// token gets one, kept across the retry; the health watch is handed through.
func TestPolicyLoadBalancing(t *testing.T) {
	r := &lbRecorder{}
	lb := providers.NewPolicy(fast).LoadBalancing(r)
	got, err := lb.CreateLoadBalancer(context.Background(), providers.LoadBalancerSpec{Name: "a"})
	if err != nil || got.ID != "lb-1" {
		t.Fatalf("create: %+v, %v", got, err)
	}
	if len(r.tokens) != 2 || r.tokens[0] == "" || r.tokens[0] != r.tokens[1] {
		t.Fatalf("tokens %q; want one token kept across the retry", r.tokens)
	}
	if err := lb.WatchHealth(context.Background(), func(providers.HealthEvent) {}); err != nil || !r.watched {
		t.Fatalf("watch: %v, reached the driver: %v", err, r.watched)
	}
}

func TestPolicyConfigOr(t *testing.T) {
	got := providers.PolicyConfig{MaxAttempts: 3, NotFoundWindow: -1}.Or(providers.DefaultPolicy)
	want := providers.DefaultPolicy
	want.MaxAttempts, want.NotFoundWindow = 3, -1
	if got != want {
		t.Fatalf("Or: %+v; want %+v", got, want)
	}
}

package throttle

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// step is one call at an offset from t0 and what the limiter must answer.
type step struct {
	at      time.Duration
	allowed bool
	wait    time.Duration
}

func TestBucketMath(t *testing.T) {
	tests := []struct {
		name       string
		action     string
		unfiltered bool
		cfg        Config
		steps      []step
	}{
		{
			name:   "run instances: burst of 5 then 2 per second",
			action: api.ActionRunInstances,
			steps: append(repeat(5, 0, true),
				step{at: 0, allowed: false, wait: 500 * time.Millisecond},
				step{at: 499 * time.Millisecond, allowed: false, wait: time.Millisecond},
				step{at: 500 * time.Millisecond, allowed: true},
				step{at: 500 * time.Millisecond, allowed: false, wait: 500 * time.Millisecond},
				step{at: 1500 * time.Millisecond, allowed: true},
				step{at: 1500 * time.Millisecond, allowed: true},
				step{at: 1500 * time.Millisecond, allowed: false, wait: 500 * time.Millisecond},
			),
		},
		{
			name:   "refill never exceeds the burst",
			action: api.ActionRunInstances,
			steps: append(append(repeat(5, 0, true), step{at: time.Hour, allowed: true}),
				append(repeat(4, time.Hour, true), step{at: time.Hour, allowed: false, wait: 500 * time.Millisecond})...),
		},
		{
			name:   "assign: 100 then 5 per second",
			action: api.ActionAssignPrivateIPAddresses,
			steps: append(repeat(100, 0, true),
				step{at: 0, allowed: false, wait: 200 * time.Millisecond},
				step{at: 200 * time.Millisecond, allowed: true},
			),
		},
		{
			name:       "unfiltered describe instances: 50 then 10 per second",
			action:     api.ActionDescribeInstances,
			unfiltered: true,
			steps: append(repeat(50, 0, true),
				step{at: 0, allowed: false, wait: 100 * time.Millisecond},
				step{at: 100 * time.Millisecond, allowed: true},
			),
		},
		{
			name:   "filtered describe network interfaces: 100 then 20 per second",
			action: api.ActionDescribeNetworkInterfaces,
			steps: append(repeat(100, 0, true),
				step{at: 0, allowed: false, wait: 50 * time.Millisecond},
			),
		},
		{
			name:   "attach is other mutating: 50 then 5 per second",
			action: api.ActionAttachNetworkInterface,
			steps: append(repeat(50, 0, true),
				step{at: 0, allowed: false, wait: 200 * time.Millisecond},
			),
		},
		{
			name:   "tags: 100 then 10 per second",
			action: api.ActionCreateTags,
			steps: append(repeat(100, 0, true),
				step{at: 0, allowed: false, wait: 100 * time.Millisecond},
			),
		},
		{
			name:   "override per action",
			action: api.ActionCreateVpc,
			cfg:    Config{Overrides: map[string]Limit{api.ActionCreateVpc: {Burst: 2, Rate: 1}}},
			steps: append(repeat(2, 0, true),
				step{at: 0, allowed: false, wait: time.Second},
				step{at: 250 * time.Millisecond, allowed: false, wait: 750 * time.Millisecond},
			),
		},
		{
			name:   "override for every action",
			action: api.ActionDescribeVpcs,
			cfg:    Config{Overrides: map[string]Limit{"*": {Burst: 1, Rate: 4}}},
			steps: []step{
				{at: 0, allowed: true},
				{at: 0, allowed: false, wait: 250 * time.Millisecond},
			},
		},
		{
			name:   "disabled",
			action: api.ActionRunInstances,
			cfg:    Config{Disabled: true},
			steps:  repeat(1000, 0, true),
		},
		{
			name:   "a clock stepping back adds no tokens",
			action: api.ActionRunInstances,
			steps: append(repeat(5, time.Second, true),
				step{at: 0, allowed: false, wait: 500 * time.Millisecond},
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(tt.cfg)
			var got []step
			for _, s := range tt.steps {
				ok, wait := l.Allow("admin", tt.action, tt.unfiltered, t0.Add(s.at))
				got = append(got, step{at: s.at, allowed: ok, wait: wait})
			}
			if diff := cmp.Diff(tt.steps, got, cmp.AllowUnexported(step{})); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBucketsAreSeparate(t *testing.T) {
	l := New(Config{Overrides: map[string]Limit{"*": {Burst: 1, Rate: 1}}})
	calls := []struct {
		principal, action string
		unfiltered        bool
		want              bool
	}{
		{"admin", api.ActionDescribeInstances, false, true},
		{"admin", api.ActionDescribeInstances, false, false},
		{"admin", api.ActionDescribeInstances, true, true}, // its own bucket
		{"i-1", api.ActionDescribeInstances, false, true},  // another caller
		{"admin", api.ActionDescribeVpcs, false, true},     // another action
		{"admin", api.ActionDescribeVpcs, true, false},     // no unfiltered bucket for vpcs
	}
	for i, c := range calls {
		if got, _ := l.Allow(c.principal, c.action, c.unfiltered, t0); got != c.want {
			t.Errorf("call %d %+v: allowed = %v, want %v", i, c, got, c.want)
		}
	}
}

func TestSweepDropsOnlyFullBuckets(t *testing.T) {
	l := New(Config{})
	l.Allow("busy", api.ActionRunInstances, false, t0)
	for i := 0; i < sweepEvery; i++ {
		l.Allow(string(rune('a'+i%26))+time.Duration(i).String(), api.ActionDescribeVpcs, false, t0)
	}
	// The sweep ran at t0: every describe bucket had one token taken, the busy one too.
	if _, ok := l.buckets[key{principal: "busy", action: api.ActionRunInstances}]; !ok {
		t.Fatalf("a bucket that is not full was swept")
	}
	l.Allow("late", api.ActionDescribeVpcs, false, t0.Add(time.Hour))
	for i := 0; i < sweepEvery; i++ {
		l.Allow("again"+time.Duration(i).String(), api.ActionDescribeVpcs, false, t0.Add(time.Hour))
	}
	if _, ok := l.buckets[key{principal: "busy", action: api.ActionRunInstances}]; ok {
		t.Fatalf("a bucket full again an hour later was kept")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantErr bool
	}{
		{Config{}, false},
		{Config{Overrides: map[string]Limit{"*": {Burst: 1, Rate: 0.5}}}, false},
		{Config{Overrides: map[string]Limit{"*": {Burst: 0, Rate: 1}}}, true},
		{Config{Overrides: map[string]Limit{"*": {Burst: 1, Rate: 0}}}, true},
		{Config{Overrides: map[string]Limit{"*": {Burst: 1, Rate: -1}}}, true},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
			t.Errorf("Validate(%+v) = %v, want error %v", tt.cfg, err, tt.wantErr)
		}
	}
}

func repeat(n int, at time.Duration, allowed bool) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = step{at: at, allowed: allowed}
	}
	return out
}

package fault

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
)

var actions = []string{api.ActionDescribeVpcs, api.ActionAssignPrivateIPAddresses}

// draws returns, for n calls of action, which ones got an injected error.
func draws(in *Injector, action string, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = in.Decide(action).Err != nil
	}
	return out
}

func TestSeedMakesRunsReproducible(t *testing.T) {
	f := api.Fault{Action: api.ActionDescribeVpcs, ErrorRate: 0.5}
	a, b := New(actions, 1), New(actions, 2)
	if err := a.Set(f, 42); err != nil {
		t.Fatal(err)
	}
	if err := b.Set(f, 42); err != nil {
		t.Fatal(err)
	}
	first := draws(a, f.Action, 200)
	if diff := cmp.Diff(first, draws(b, f.Action, 200)); diff != "" {
		t.Errorf("same seed, different draws (-a +b):\n%s", diff)
	}
	hits := 0
	for _, h := range first {
		if h {
			hits++
		}
	}
	if hits < 60 || hits > 140 {
		t.Errorf("%d of 200 calls failed at rate 0.5", hits)
	}
	// Reseeding replays the same sequence.
	if err := a.Set(f, 42); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, draws(a, f.Action, 200)); diff != "" {
		t.Errorf("reseeded run differs (-first +again):\n%s", diff)
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name   string
		faults []api.Fault
		action string
		want   Decision
	}{
		{name: "no fault", action: api.ActionDescribeVpcs},
		{
			name:   "certain error defaults to InternalError",
			faults: []api.Fault{{Action: api.ActionDescribeVpcs, ErrorRate: 1}},
			action: api.ActionDescribeVpcs,
			want:   Decision{Err: api.ErrInternalError},
		},
		{
			name: "own fault beats the wildcard",
			faults: []api.Fault{
				{Action: AllActions, ErrorRate: 1, ErrorCode: api.CodeServiceUnavailable},
				{Action: api.ActionDescribeVpcs, LatencyMillis: 5, VisibilityLagMillis: 7},
			},
			action: api.ActionDescribeVpcs,
			want:   Decision{Latency: 5 * time.Millisecond, VisibilityLag: 7 * time.Millisecond},
		},
		{
			name:   "wildcard applies to the rest",
			faults: []api.Fault{{Action: AllActions, ErrorRate: 1, ErrorCode: api.CodeServiceUnavailable}},
			action: api.ActionAssignPrivateIPAddresses,
			want:   Decision{Err: api.ErrServiceUnavailable},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := New(actions, 1)
			for _, f := range tt.faults {
				if err := in.Set(f, 0); err != nil {
					t.Fatal(err)
				}
			}
			got := in.Decide(tt.action)
			if (got.Err == nil) != (tt.want.Err == nil) || (got.Err != nil && !errors.Is(got.Err, tt.want.Err)) {
				t.Errorf("error = %v, want %v", got.Err, tt.want.Err)
			}
			got.Err, tt.want.Err = nil, nil
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		f    api.Fault
		want error
	}{
		{"ok", api.Fault{Action: api.ActionDescribeVpcs, ErrorRate: 0.3, ErrorCode: api.CodeServiceUnavailable}, nil},
		{"wildcard", api.Fault{Action: "*", LatencyMillis: 10}, nil},
		{"no action", api.Fault{ErrorRate: 1}, api.ErrMissingParameter},
		{"unknown action", api.Fault{Action: "DescribeBananas"}, api.ErrInvalidParameterValue},
		{"rate above 1", api.Fault{Action: "*", ErrorRate: 1.5}, api.ErrInvalidParameterValue},
		{"negative rate", api.Fault{Action: "*", ErrorRate: -0.1}, api.ErrInvalidParameterValue},
		{"unknown code", api.Fault{Action: "*", ErrorRate: 1, ErrorCode: "Oops"}, api.ErrInvalidParameterValue},
		{"negative latency", api.Fault{Action: "*", LatencyMillis: -1}, api.ErrInvalidParameterValue},
		{"huge latency", api.Fault{Action: "*", LatencyMillis: 1 << 40}, api.ErrInvalidParameterValue},
		{"latency that overflows a duration", api.Fault{Action: "*", LatencyMillis: 1 << 62}, api.ErrInvalidParameterValue},
		{"negative lag", api.Fault{Action: "*", VisibilityLagMillis: -1}, api.ErrInvalidParameterValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := New(actions, 1).Set(tt.f, 0)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Set(%+v) = %v, want %v", tt.f, err, tt.want)
			}
		})
	}
}

func TestListAndClear(t *testing.T) {
	in := New(actions, 1)
	for _, f := range []api.Fault{
		{Action: api.ActionDescribeVpcs, ErrorRate: 1},
		{Action: AllActions, LatencyMillis: 3},
		{Action: api.ActionAssignPrivateIPAddresses, VisibilityLagMillis: 9},
	} {
		if err := in.Set(f, 0); err != nil {
			t.Fatal(err)
		}
	}
	want := []api.Fault{
		{Action: AllActions, LatencyMillis: 3},
		{Action: api.ActionAssignPrivateIPAddresses, VisibilityLagMillis: 9},
		{Action: api.ActionDescribeVpcs, ErrorRate: 1, ErrorCode: api.CodeInternalError},
	}
	if diff := cmp.Diff(want, in.List()); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	if err := in.Clear(api.ActionDescribeVpcs); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[:2], in.List()); diff != "" {
		t.Errorf("after clearing one (-want +got):\n%s", diff)
	}
	if err := in.Clear("Nope"); !errors.Is(err, api.ErrInvalidParameterValue) {
		t.Errorf("clearing an unknown action: %v", err)
	}
	if err := in.Clear(""); err != nil {
		t.Fatal(err)
	}
	if got := in.List(); len(got) != 0 {
		t.Errorf("after clearing all: %v", got)
	}
}

func TestSeveralCodesShareOneRoll(t *testing.T) {
	in := New([]string{"AssignPrivateIpAddresses"}, 7)
	f := api.Fault{Action: "*", ErrorRate: 0.10, ErrorCode: api.CodeRequestLimitExceeded,
		Errors: []api.FaultError{{Code: api.CodeInternalError, Rate: 0.02}}}
	if err := in.Set(f, 42); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	const n = 100000
	for range n {
		if d := in.Decide("AssignPrivateIpAddresses"); d.Err != nil {
			counts[d.Err.Code]++
		}
	}
	for code, want := range map[string]float64{api.CodeRequestLimitExceeded: 0.10, api.CodeInternalError: 0.02} {
		got := float64(counts[code]) / n
		if got < want*0.9 || got > want*1.1 {
			t.Errorf("%s on %.4f of calls, want about %.2f", code, got, want)
		}
	}
	bad := api.Fault{Action: "*", ErrorRate: 0.7, Errors: []api.FaultError{{Code: api.CodeInternalError, Rate: 0.4}}}
	if err := in.Set(bad, 0); err == nil {
		t.Error("rates adding up to 1.1 were accepted")
	}
	if err := in.Set(api.Fault{Action: "*", Errors: []api.FaultError{{Code: "Nope", Rate: 0.1}}}, 0); err == nil {
		t.Error("an unknown code in Errors was accepted")
	}
}

// TestDataPlaneFaults: a data-plane operation takes a fault of its own, never the "*" fault
// (which is about the API), and refuses what only API calls have (visibility lag, after-commit).
func TestDataPlaneFaults(t *testing.T) {
	in := New(append(actions, api.DataPlaneOperations...), 1)
	if err := in.Set(api.Fault{Action: AllActions, ErrorRate: 1}, 0); err != nil {
		t.Fatal(err)
	}
	if d := in.Decide(api.DataPlaneProgramLoadBalancer); d.Err != nil {
		t.Errorf("the \"*\" fault failed a data-plane operation: %v", d.Err)
	}
	if err := in.Set(api.Fault{Action: api.DataPlaneProgramLoadBalancer, ErrorRate: 1}, 0); err != nil {
		t.Fatal(err)
	}
	if d := in.Decide(api.DataPlaneProgramLoadBalancer); d.Err == nil || d.Err.Code != api.CodeInternalError {
		t.Errorf("a data-plane fault at rate 1 decided %+v, want InternalError", d)
	}
	if d := in.Decide(api.DataPlaneSetRoute); d.Err != nil {
		t.Errorf("another data-plane operation failed: %v", d.Err)
	}
	for _, f := range []api.Fault{
		{Action: api.DataPlaneSetRoute, VisibilityLagMillis: 10},
		{Action: api.DataPlaneSetRoute, ErrorRate: 1, AfterCommit: true},
	} {
		if err := in.Set(f, 0); err == nil {
			t.Errorf("fault %+v accepted, want refused", f)
		}
	}
	if err := in.Set(api.Fault{Action: "DataPlane.Nope", ErrorRate: 1}, 0); err == nil || !errors.Is(err, api.ErrInvalidParameterValue) {
		t.Errorf("an unknown data-plane operation: %v, want InvalidParameterValue", err)
	}
	if err := in.Clear(api.DataPlaneProgramLoadBalancer); err != nil {
		t.Fatal(err)
	}
	if d := in.Decide(api.DataPlaneProgramLoadBalancer); d.Err != nil {
		t.Errorf("a cleared data-plane fault still fails: %v", d.Err)
	}
}

package providers_test

import (
	"context"
	"errors"
	"fmt"
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

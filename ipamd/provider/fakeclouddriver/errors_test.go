package fakeclouddriver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/ipamd/provider"
)

// TestClassify: every code ipamd acts on maps to its provider kind and keeps the cloud's code
// for metrics; refusals ipamd only reports get no kind; transport failures are ErrTransport;
// context errors pass unchanged.
func TestClassify(t *testing.T) {
	kinds := []error{provider.ErrThrottled, provider.ErrUnavailable, provider.ErrTransport, provider.ErrNotFound,
		provider.ErrSubnetFull, provider.ErrInterfaceLimit, provider.ErrAddressLimit, provider.ErrConflict}
	for _, tc := range []struct {
		name      string
		err       error
		kind      error // nil: none of kinds
		code      string
		retryable bool
	}{
		{"throttled", api.Errorf(api.CodeRequestLimitExceeded, "slow down"), provider.ErrThrottled, api.CodeRequestLimitExceeded, true},
		{"internal", api.Errorf(api.CodeInternalError, "oops"), provider.ErrUnavailable, api.CodeInternalError, true},
		{"unavailable", api.Errorf(api.CodeServiceUnavailable, "later"), provider.ErrUnavailable, api.CodeServiceUnavailable, true},
		{"eni not found", api.Errorf(api.CodeInvalidNetworkInterfaceIDNotFound, "eni-1"), provider.ErrNotFound, api.CodeInvalidNetworkInterfaceIDNotFound, false},
		{"instance not found", api.Errorf(api.CodeInvalidInstanceIDNotFound, "i-1"), provider.ErrNotFound, api.CodeInvalidInstanceIDNotFound, false},
		{"subnet full", api.Errorf(api.CodeInsufficientFreeAddresses, "full"), provider.ErrSubnetFull, api.CodeInsufficientFreeAddresses, false},
		{"no /28 left", api.Errorf(api.CodeInsufficientCidrBlocks, "full"), provider.ErrSubnetFull, api.CodeInsufficientCidrBlocks, false},
		{"interface limit", api.Errorf(api.CodeAttachmentLimitExceeded, "3"), provider.ErrInterfaceLimit, api.CodeAttachmentLimitExceeded, false},
		{"address limit", api.Errorf(api.CodePrivateIPAddressLimitExceeded, "4"), provider.ErrAddressLimit, api.CodePrivateIPAddressLimitExceeded, false},
		{"address in use", api.Errorf(api.CodeInvalidIPAddressInUse, "10.0.0.5"), provider.ErrConflict, api.CodeInvalidIPAddressInUse, false},
		{"bad parameter", api.Errorf(api.CodeInvalidParameterValue, "x"), nil, api.CodeInvalidParameterValue, false},
		{"auth", api.Errorf(api.CodeAuthFailure, "token"), nil, api.CodeAuthFailure, false},
		{"wrapped", fmt.Errorf("assign: %w", api.Errorf(api.CodeRequestLimitExceeded, "x")), provider.ErrThrottled, api.CodeRequestLimitExceeded, true},
		{"refused", fmt.Errorf("fakecloud X: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), provider.ErrTransport, "transport", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err)
			for _, k := range kinds {
				want := errors.Is(k, tc.kind) // the kinds are distinct sentinels
				if errors.Is(got, k) != want {
					t.Errorf("errors.Is(%v, %v) = %v", got, k, !want)
				}
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("the cloud's error is not kept: %v", got)
			}
			if c := provider.Code(got); c != tc.code {
				t.Errorf("code %q; want %q", c, tc.code)
			}
			if provider.Retryable(got) != tc.retryable {
				t.Errorf("retryable %v; want %v", !tc.retryable, tc.retryable)
			}
			if again := classify(got); again != got { //nolint:errorlint // the very same value, not a match
				t.Errorf("classify is not idempotent: %v", again)
			}
		})
	}
	for _, err := range []error{context.Canceled, fmt.Errorf("x: %w", context.DeadlineExceeded), nil} {
		if got := classify(err); got != err { //nolint:errorlint // the very same value, not a match
			t.Errorf("classify(%v) = %v; want it unchanged", err, got)
		}
	}
}

// TestDriverErrorsCarryKinds: against fakecloud, an attach at a taken device index is a
// conflict (the record is behind) and leaves no interface behind; an unknown interface is
// ErrNotFound.
func TestDriverErrorsCarryKinds(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := context.Background()
	sn, insts := env.Launch(t, "10.0.0.0/16", "10.0.0.0/24", "t3.small", 1)
	in := insts[0]
	d, err := New(provider.Settings{Endpoint: env.URL, Token: in.Token})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.CreateInterface(ctx, provider.CreateInterfaceRequest{InstanceID: in.InstanceID, SubnetID: sn.SubnetID, DeviceIndex: 0, IPCount: 1})
	if !errors.Is(err, provider.ErrConflict) {
		t.Fatalf("attach at the primary's device index: %v; want provider.ErrConflict", err)
	}
	inst, err := d.DescribeInstance(ctx, in.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if len(inst.Detached) != 0 || len(inst.Interfaces) != 1 {
		t.Fatalf("after the refused attach: %d attached, %d detached; want the primary only", len(inst.Interfaces), len(inst.Detached))
	}
	if _, err := d.Assign(ctx, provider.AssignRequest{InterfaceID: inst.Interfaces[0].ID, IPCount: 100}); !errors.Is(err, provider.ErrAddressLimit) {
		t.Fatalf("assign beyond the type's limit: %v; want provider.ErrAddressLimit", err)
	}
	if _, err := d.DescribeInstance(ctx, "i-00000000000000000"); !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("describe of an unknown instance: %v; want provider.ErrNotFound", err)
	}
}

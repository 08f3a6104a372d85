package fakecloud

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/providers"
)

// TestClassify: every code the consumers act on maps to its kind (and only to it, and to what
// it refines) and keeps the cloud's code for metrics; a code the driver does not know is
// permanent; transport failures are transient; context errors pass unchanged.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		kind      error
		code      string
		retryable bool
	}{
		{"throttled", api.Errorf(api.CodeRequestLimitExceeded, "slow down"), providers.ErrThrottled, api.CodeRequestLimitExceeded, true},
		{"internal", api.Errorf(api.CodeInternalError, "oops"), providers.ErrTransient, api.CodeInternalError, true},
		{"unavailable", api.Errorf(api.CodeServiceUnavailable, "later"), providers.ErrTransient, api.CodeServiceUnavailable, true},
		{"eni not found", api.Errorf(api.CodeInvalidNetworkInterfaceIDNotFound, "eni-1"), providers.ErrNotFound, api.CodeInvalidNetworkInterfaceIDNotFound, false},
		{"instance not found", api.Errorf(api.CodeInvalidInstanceIDNotFound, "i-1"), providers.ErrNotFound, api.CodeInvalidInstanceIDNotFound, false},
		{"subnet full", api.Errorf(api.CodeInsufficientFreeAddresses, "full"), providers.ErrSubnetFull, api.CodeInsufficientFreeAddresses, false},
		{"no /28 left", api.Errorf(api.CodeInsufficientCidrBlocks, "full"), providers.ErrSubnetFull, api.CodeInsufficientCidrBlocks, false},
		{"interface limit", api.Errorf(api.CodeAttachmentLimitExceeded, "3"), providers.ErrInterfaceLimit, api.CodeAttachmentLimitExceeded, false},
		{"address limit", api.Errorf(api.CodePrivateIPAddressLimitExceeded, "4"), providers.ErrAddressLimit, api.CodePrivateIPAddressLimitExceeded, false},
		{"address in use", api.Errorf(api.CodeInvalidIPAddressInUse, "10.0.0.5"), providers.ErrConflict, api.CodeInvalidIPAddressInUse, false},
		{"bad parameter", api.Errorf(api.CodeInvalidParameterValue, "x"), providers.ErrInvalid, api.CodeInvalidParameterValue, false},
		{"auth", api.Errorf(api.CodeAuthFailure, "token"), providers.ErrPermanent, api.CodeAuthFailure, false},
		{"unknown code", api.Errorf("SomethingNew", "x"), providers.ErrPermanent, "SomethingNew", false},
		{"too many targets", api.Errorf(api.CodeTooManyTargets, "x"), providers.ErrLimit, api.CodeTooManyTargets, false},
		{"no public address", api.Errorf(api.CodeInsufficientPublicAddresses, "x"), providers.ErrLimit, api.CodeInsufficientPublicAddresses, false},
		{"target group gone", api.Errorf(api.CodeTargetGroupNotFound, "x"), providers.ErrNotFound, api.CodeTargetGroupNotFound, false},
		{"rule gone", api.Errorf(api.CodeRuleNotFound, "x"), providers.ErrNotFound, api.CodeRuleNotFound, false},
		{"certificate gone", api.Errorf(api.CodeCertificateNotFound, "x"), providers.ErrNotFound, api.CodeCertificateNotFound, false},
		{"priority taken", api.Errorf(api.CodePriorityInUse, "x"), providers.ErrConflict, api.CodePriorityInUse, false},
		{"too many rules", api.Errorf(api.CodeTooManyRules, "x"), providers.ErrLimit, api.CodeTooManyRules, false},
		{"too many certificates", api.Errorf(api.CodeTooManyCertificates, "x"), providers.ErrLimit, api.CodeTooManyCertificates, false},
		{"bad action", api.Errorf(api.CodeInvalidLoadBalancerAction, "x"), providers.ErrInvalid, api.CodeInvalidLoadBalancerAction, false},
		{"duplicate name", api.Errorf(api.CodeDuplicateLoadBalancerName, "x"), providers.ErrConflict, api.CodeDuplicateLoadBalancerName, false},
		{"validation", api.Errorf(api.CodeValidationError, "x"), providers.ErrInvalid, api.CodeValidationError, false},
		{"wrapped", fmt.Errorf("assign: %w", api.Errorf(api.CodeRequestLimitExceeded, "x")), providers.ErrThrottled, api.CodeRequestLimitExceeded, true},
		{"refused", fmt.Errorf("fakecloud X: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), providers.ErrTransient, "transport", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err)
			for _, k := range providers.Kinds {
				want := errors.Is(tc.kind, k) // a refined kind is also what it refines
				if errors.Is(got, k) != want {
					t.Errorf("errors.Is(%v, %v) = %v", got, k, !want)
				}
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("the cloud's error is not kept: %v", got)
			}
			if c := providers.Code(got); c != tc.code {
				t.Errorf("code %q; want %q", c, tc.code)
			}
			if providers.Retryable(got) != tc.retryable {
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
	d, err := NewIPAM(Config{Settings: providers.Settings{Endpoint: env.URL, Credentials: providers.Credentials{Token: in.Token}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.CreateInterface(ctx, providers.CreateInterfaceRequest{InstanceID: in.InstanceID, SubnetID: sn.SubnetID, DeviceIndex: 0, IPCount: 1})
	if !errors.Is(err, providers.ErrConflict) {
		t.Fatalf("attach at the primary's device index: %v; want providers.ErrConflict", err)
	}
	inst, err := d.DescribeInstance(ctx, in.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if len(inst.Detached) != 0 || len(inst.Interfaces) != 1 {
		t.Fatalf("after the refused attach: %d attached, %d detached; want the primary only", len(inst.Interfaces), len(inst.Detached))
	}
	if _, err := d.Assign(ctx, providers.AssignRequest{InterfaceID: inst.Interfaces[0].ID, IPCount: 100}); !errors.Is(err, providers.ErrAddressLimit) {
		t.Fatalf("assign beyond the type's limit: %v; want providers.ErrAddressLimit", err)
	}
	if _, err := d.DescribeInstance(ctx, "i-00000000000000000"); !errors.Is(err, providers.ErrNotFound) {
		t.Fatalf("describe of an unknown instance: %v; want providers.ErrNotFound", err)
	}
}

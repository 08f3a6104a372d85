package providers_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/flatnet/flatnet/providers"
)

// TestRetryable is the retry semantics, decided in one place: throttling and transient failures
// (5xx, transport) are worth repeating; refusals, limits, conflicts, NotFound, unclassified
// errors and the caller's own context are not.
func TestRetryable(t *testing.T) {
	cloud := func(kind error, code string) error {
		return &providers.Error{Kind: kind, Code: code, Err: fmt.Errorf("the cloud says %s", code)}
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"throttled", cloud(providers.ErrThrottled, "RequestLimitExceeded"), true},
		{"5xx", cloud(providers.ErrTransient, "InternalError"), true},
		{"transport", &providers.Error{Kind: providers.ErrTransient, Err: errors.New("connection refused")}, true},
		{"wrapped throttled", fmt.Errorf("assign 3 to eni-1: %w", cloud(providers.ErrThrottled, "Throttling")), true},
		{"not found", cloud(providers.ErrNotFound, "InvalidNetworkInterfaceID.NotFound"), false},
		{"limit", cloud(providers.ErrLimit, "TooManyTargets"), false},
		{"subnet full", cloud(providers.ErrSubnetFull, "InsufficientFreeAddressesInSubnet"), false},
		{"interface limit", cloud(providers.ErrInterfaceLimit, "AttachmentLimitExceeded"), false},
		{"address limit", cloud(providers.ErrAddressLimit, "PrivateIpAddressLimitExceeded"), false},
		{"conflict", cloud(providers.ErrConflict, "InvalidIPAddress.InUse"), false},
		{"invalid", cloud(providers.ErrInvalid, "InvalidParameterValue"), false},
		{"permanent", cloud(providers.ErrPermanent, "UnauthorizedOperation"), false},
		{"no kind", cloud(nil, "SomethingNew"), false},
		{"unclassified", errors.New("boom"), false},
		{"circuit open", fmt.Errorf("%w: retry in 2s", providers.ErrCircuitOpen), false},
		{"canceled", context.Canceled, false},
		{"deadline over a throttle", fmt.Errorf("%w (last cloud error: %w)", context.DeadlineExceeded, cloud(providers.ErrThrottled, "RequestLimitExceeded")), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := providers.Retryable(tc.err); got != tc.want {
				t.Errorf("Retryable(%v) = %v; want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestKinds: each kind matches itself and what it refines, nothing else; an *Error matches its
// kind and the cloud's error; a nil kind is permanent.
func TestKinds(t *testing.T) {
	refines := map[error]bool{providers.ErrSubnetFull: true, providers.ErrInterfaceLimit: true, providers.ErrAddressLimit: true}
	for _, k := range providers.Kinds {
		matches := 0
		for _, other := range providers.Kinds {
			if errors.Is(k, other) {
				matches++
			}
		}
		if want := map[bool]int{false: 1, true: 2}[refines[k]]; matches != want {
			t.Errorf("kind %q matches %d kinds; want %d (itself, and ErrLimit for a limit's refinement)", k, matches, want)
		}
		if refines[k] && !errors.Is(k, providers.ErrLimit) {
			t.Errorf("kind %q does not refine ErrLimit", k)
		}
	}
	for _, k := range providers.Kinds {
		cause := errors.New("the cloud's own error")
		err := fmt.Errorf("call: %w", &providers.Error{Kind: k, Code: "X", Err: cause})
		for _, other := range providers.Kinds {
			want := errors.Is(k, other) // itself, or ErrLimit for its refinements (checked above)
			if errors.Is(err, other) != want {
				t.Errorf("errors.Is(error of kind %q, %q) = %v; want %v", k, other, !want, want)
			}
		}
		if !errors.Is(err, cause) {
			t.Errorf("kind %q: the cloud's error is lost", k)
		}
	}
	if !errors.Is(&providers.Error{Err: errors.New("x")}, providers.ErrPermanent) {
		t.Error("an *Error without a kind is not permanent")
	}
}

func TestCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{fmt.Errorf("x: %w", &providers.Error{Kind: providers.ErrThrottled, Code: "RequestLimitExceeded", Err: errors.New("slow")}), "RequestLimitExceeded"},
		{&providers.Error{Kind: providers.ErrTransient, Err: errors.New("connection refused")}, "transport"},
		{errors.New("unclassified"), "transport"},
		{context.Canceled, "canceled"},
		{fmt.Errorf("%w (last cloud error: x)", context.DeadlineExceeded), "timeout"},
		{fmt.Errorf("%w: retry in 1s", providers.ErrCircuitOpen), "circuit_open"},
	} {
		if got := providers.Code(tc.err); got != tc.want {
			t.Errorf("Code(%v) = %q; want %q", tc.err, got, tc.want)
		}
	}
}

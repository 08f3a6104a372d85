package aws

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/flatnet/flatnet/providers"
)

// awsErr is an error as the SDK returns it: an operation error around a response error around
// the service's API error.
func awsErr(code string, status int) error {
	return &smithy.OperationError{ServiceID: "EC2", OperationName: "X", Err: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      &smithy.GenericAPIError{Code: code, Message: "the cloud says " + code},
	}}
}

// TestClassify: EC2's and ELBv2's codes map onto the seam's kinds and keep the code; unknown
// codes take their kind from the status; transport failures are transient; the caller's context
// errors pass unchanged.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		kind      error
		code      string
		retryable bool
	}{
		{"ec2 throttle", awsErr("RequestLimitExceeded", 503), providers.ErrThrottled, "RequestLimitExceeded", true},
		{"elbv2 throttle", awsErr("Throttling", 400), providers.ErrThrottled, "Throttling", true},
		{"internal", awsErr("InternalError", 500), providers.ErrTransient, "InternalError", true},
		{"elbv2 internal", awsErr("InternalFailure", 500), providers.ErrTransient, "InternalFailure", true},
		{"unavailable", awsErr("ServiceUnavailable", 503), providers.ErrTransient, "ServiceUnavailable", true},
		{"unknown 5xx", awsErr("SomethingNew", 502), providers.ErrTransient, "SomethingNew", true},
		{"bad parameter", awsErr("InvalidParameterValue", 400), providers.ErrInvalid, "InvalidParameterValue", false},
		{"validation", awsErr("ValidationError", 400), providers.ErrInvalid, "ValidationError", false},
		{"address limit", awsErr("PrivateIpAddressLimitExceeded", 400), providers.ErrAddressLimit, "PrivateIpAddressLimitExceeded", false},
		{"subnet full", awsErr("InsufficientFreeAddressesInSubnet", 400), providers.ErrSubnetFull, "InsufficientFreeAddressesInSubnet", false},
		{"no /28", awsErr("InsufficientCidrBlocks", 400), providers.ErrSubnetFull, "InsufficientCidrBlocks", false},
		{"interface limit", awsErr("AttachmentLimitExceeded", 400), providers.ErrInterfaceLimit, "AttachmentLimitExceeded", false},
		{"lb quota", awsErr("TooManyLoadBalancers", 400), providers.ErrLimit, "TooManyLoadBalancers", false},
		{"eni not found", awsErr("InvalidNetworkInterfaceID.NotFound", 400), providers.ErrNotFound, "InvalidNetworkInterfaceID.NotFound", false},
		{"instance not found", awsErr("InvalidInstanceID.NotFound", 400), providers.ErrNotFound, "InvalidInstanceID.NotFound", false},
		{"lb not found", awsErr("LoadBalancerNotFound", 400), providers.ErrNotFound, "LoadBalancerNotFound", false},
		{"tg not found", awsErr("TargetGroupNotFound", 400), providers.ErrNotFound, "TargetGroupNotFound", false},
		{"duplicate lb", awsErr("DuplicateLoadBalancerName", 400), providers.ErrConflict, "DuplicateLoadBalancerName", false},
		{"in use", awsErr("ResourceInUse", 400), providers.ErrConflict, "ResourceInUse", false},
		{"address in use", awsErr("InvalidIPAddress.InUse", 400), providers.ErrConflict, "InvalidIPAddress.InUse", false},
		{"dependency", awsErr("DependencyViolation", 400), providers.ErrConflict, "DependencyViolation", false},
		{"association limit", awsErr("TargetGroupAssociationLimit", 400), providers.ErrLimit, "TargetGroupAssociationLimit", false},
		{"not permitted", awsErr("OperationNotPermitted", 400), providers.ErrPermanent, "OperationNotPermitted", false},
		{"token mismatch", awsErr("IdempotentParameterMismatch", 400), providers.ErrConflict, "IdempotentParameterMismatch", false},
		{"auth", awsErr("AuthFailure", 401), providers.ErrPermanent, "AuthFailure", false},
		{"denied", awsErr("UnauthorizedOperation", 403), providers.ErrPermanent, "UnauthorizedOperation", false},
		{"refused", fmt.Errorf("operation error EC2: X: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), providers.ErrTransient, "transport", true},
		{"5xx without a code", &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 502}}, Err: errors.New("bad gateway")}, providers.ErrTransient, "transport", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err)
			for _, k := range providers.Kinds {
				want := errors.Is(tc.kind, k) // a refinement is its parent too
				if errors.Is(got, k) != want {
					t.Errorf("errors.Is(%v, %v) = %v; want %v", got, k, !want, want)
				}
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("the SDK's error is not kept: %v", got)
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
	for _, err := range []error{nil, context.Canceled, fmt.Errorf("x: %w", context.DeadlineExceeded)} {
		if got := classify(err); got != err { //nolint:errorlint // the very same value, not a match
			t.Errorf("classify(%v) = %v; want it unchanged", err, got)
		}
	}
}

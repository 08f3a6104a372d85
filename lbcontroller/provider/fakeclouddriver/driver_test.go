package fakeclouddriver

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/lbcontroller/provider"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		code string
		kind error
	}{
		{api.CodeRequestLimitExceeded, provider.ErrThrottled},
		{api.CodeInternalError, provider.ErrUnavailable},
		{api.CodeTooManyTargets, provider.ErrQuota},
		{api.CodeInsufficientPublicAddresses, provider.ErrQuota},
		{api.CodeTargetGroupNotFound, provider.ErrNotFound},
		{api.CodeValidationError, provider.ErrInvalid},
	}
	for _, tt := range tests {
		err := classify(fmt.Errorf("fakecloud X: %w", &api.Error{Code: tt.code}))
		if !errors.Is(err, tt.kind) || provider.Code(err) != tt.code {
			t.Errorf("%s: got %v (code %s), want kind %v", tt.code, err, provider.Code(err), tt.kind)
		}
	}
	if err := classify(errors.New("connection refused")); !provider.Retryable(err) {
		t.Errorf("a transport failure is not retryable: %v", err)
	}
}

func TestTargetChange(t *testing.T) {
	up := api.Change{Kind: api.KindTarget, ID: "tg-1/10.0.0.5:80", Target: &api.TargetHealthDescription{
		TargetGroupID: "tg-1", Target: api.Target{IP: "10.0.0.5", Port: 80}, TargetHealth: api.TargetHealth{State: api.TargetHealthUnavailable},
	}}
	h, ok := targetChange(up)
	if !ok || h.State != provider.HealthUnhealthy || h.Gone || h.Target != (provider.Target{IP: netip.MustParseAddr("10.0.0.5"), Port: 80}) {
		t.Errorf("upsert: %+v %v", h, ok)
	}
	h, ok = targetChange(api.Change{Kind: api.KindTarget, Op: "delete", ID: api.TargetID("tg-1", "10.0.0.6", 8080)})
	if !ok || !h.Gone || h.TargetGroupID != "tg-1" || h.Target.Port != 8080 {
		t.Errorf("delete: %+v %v", h, ok)
	}
	if _, ok := targetChange(api.Change{Kind: api.KindTarget, ID: "garbage"}); ok {
		t.Error("a malformed ID was accepted")
	}
}

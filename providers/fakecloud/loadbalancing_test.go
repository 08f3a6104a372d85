package fakecloud

import (
	"net/netip"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/providers"
)

func TestTargetChange(t *testing.T) {
	up := api.Change{Kind: api.KindTarget, ID: "tg-1/10.0.0.5:80", Target: &api.TargetHealthDescription{
		TargetGroupID: "tg-1", Target: api.Target{IP: "10.0.0.5", Port: 80}, TargetHealth: api.TargetHealth{State: api.TargetHealthUnavailable},
	}}
	h, ok := targetChange(up)
	if !ok || h.State != providers.HealthUnhealthy || h.Gone || h.Target != (providers.Target{IP: netip.MustParseAddr("10.0.0.5"), Port: 80}) {
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

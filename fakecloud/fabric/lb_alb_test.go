package fabric

import (
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// TestDesiredLeavesApplicationLoadBalancers: until the L7 data plane is wired, an application
// load balancer is neither programmed as a network one nor reported failed, so it stays
// provisioning (honest), and its groups are not health checked by the L4 checker.
func TestDesiredLeavesApplicationLoadBalancers(t *testing.T) {
	snap := lbSnap(api.SchemeInternetFacing, nil, tgt("10.0.1.101", 8080, "initial"))
	snap.LoadBalancers[0].Type = api.LoadBalancerTypeApplication
	snap.Listeners = []api.Listener{{ListenerID: "l-1", LoadBalancerID: "lb-1", Protocol: api.ProtocolHTTP, Port: 80,
		DefaultActions: []api.Action{{Type: api.ActionTypeFixedResponse, FixedResponseConfig: &api.FixedResponseActionConfig{StatusCode: "404"}}}}}
	w, err := Desired(snap)
	if err != nil {
		t.Fatal(err)
	}
	if w.LBs["lb-1"] != nil || w.LBFailures["lb-1"] != "" {
		t.Errorf("application load balancer: desired %+v, failure %q; want neither", w.LBs["lb-1"], w.LBFailures["lb-1"])
	}
}

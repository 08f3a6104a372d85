package lbcontroller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/lbcontroller"
	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/lbcontroller/model"
)

// TestGatewayInfrastructureLabels: a Gateway's spec.infrastructure.labels are tags of its
// cloud resources (load balancer, target groups, certificates), kept in step as the labels
// change, without replacing anything; a label of flatnet's own is refused with an Event and
// the ownership tag keeps its value; a tag someone else put on the load balancer stays
// through every change.
func TestGatewayInfrastructureLabels(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	class := h.gatewayClass(t)
	ns := h.namespace(t)
	h.webService(t, ns, "10.0.1.20")
	h.tlsSecret(t, ns, "cert", "shop.example.com")
	gw := &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gw"},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: gwv1.ObjectName(class),
			Infrastructure: &gwv1.GatewayInfrastructure{Labels: map[gwv1.LabelKey]gwv1.LabelValue{
				"team": "a", "example.com/env": "prod", model.TagCluster: "stolen",
			}},
			Listeners: []gwv1.Listener{
				{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType},
				{Name: "https", Port: 443, Protocol: gwv1.HTTPSProtocolType, TLS: &gwv1.ListenerTLSConfig{
					Mode: ptr(gwv1.TLSModeTerminate), CertificateRefs: []gwv1.SecretObjectReference{{Name: "cert"}},
				}},
			},
		},
	}
	if err := h.k8s.Create(ctx, gw); err != nil {
		t.Fatal(err)
	}
	h.httpRoute(t, ns, "web", "web", 80)

	own := map[string]string{model.TagCluster: h.cluster, lbcontroller.TagGateway: ns + "/gw"}
	type resource struct {
		kind, id string
		tags     map[string]string
	}
	// resources lists every resource of the Gateway.
	resources := func() ([]resource, error) {
		var out []resource
		lbs, err := h.p.ListApplicationLoadBalancers(ctx, own)
		if err != nil {
			return nil, err
		}
		for _, lb := range lbs {
			out = append(out, resource{"load balancer", lb.ID, lb.Tags})
		}
		tgs, err := h.p.ListTargetGroups(ctx, own)
		if err != nil {
			return nil, err
		}
		for _, tg := range tgs {
			out = append(out, resource{"target group", tg.ID, tg.Tags})
		}
		certs, err := h.p.ListCertificates(ctx, own)
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			out = append(out, resource{"certificate", c.ID, c.Tags})
		}
		return out, nil
	}
	// tagged waits until there is one resource of each kind at least, each carrying want and
	// no key of gone; it answers the load balancer's ID.
	tagged := func(what string, want map[string]string, gone ...string) string {
		t.Helper()
		var lbID string
		eventually(t, what, func() (bool, string) {
			rs, err := resources()
			if err != nil {
				return false, err.Error()
			}
			kinds := map[string]bool{}
			for _, r := range rs {
				kinds[r.kind] = true
				if r.kind == "load balancer" {
					lbID = r.id
				}
				if r.tags[model.TagCluster] != h.cluster {
					return false, fmt.Sprintf("%s %s: ownership tag %s=%q", r.kind, r.id, model.TagCluster, r.tags[model.TagCluster])
				}
				for k, v := range want {
					if r.tags[k] != v {
						return false, fmt.Sprintf("%s %s: %s=%q, want %q (tags %v)", r.kind, r.id, k, r.tags[k], v, r.tags)
					}
				}
				for _, k := range gone {
					if _, ok := r.tags[k]; ok {
						return false, fmt.Sprintf("%s %s still has tag %s (tags %v)", r.kind, r.id, k, r.tags)
					}
				}
			}
			return kinds["load balancer"] && kinds["target group"] && kinds["certificate"], fmt.Sprintf("resources %v", rs)
		})
		return lbID
	}

	lbID := tagged("the Gateway's labels are the tags of its load balancer, target group and certificate",
		map[string]string{"team": "a", "example.com/env": "prod"})
	eventually(t, "a LabelNotApplied event names the label of flatnet's own", func() (bool, string) {
		evs := strings.Join(h.gatewayEvents(t, ns, "gw"), "\n")
		return strings.Contains(evs, gateway.ReasonLabelNotApplied+": ") && strings.Contains(evs, model.TagCluster), evs
	})
	var g gwv1.Gateway
	if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(gw), &g); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(g.Status.Conditions, string(gwv1.GatewayConditionProgrammed)); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("the Gateway is not Programmed: %+v", g.Status.Conditions)
	}

	// A tag of someone else's on the load balancer.
	if err := h.p.TagResources(ctx, []string{lbID}, map[string]string{"cost-center": "42"}); err != nil {
		t.Fatal(err)
	}
	update(t, h, client.ObjectKeyFromObject(gw), func(g *gwv1.Gateway) {
		g.Spec.Infrastructure.Labels = map[gwv1.LabelKey]gwv1.LabelValue{"team": "b"}
	})
	if id := tagged("a changed label changes the tags; a dropped one goes", map[string]string{"team": "b"}, "example.com/env"); id != lbID {
		t.Errorf("the load balancer was replaced (%s, was %s): a label change must only retag", id, lbID)
	}

	update(t, h, client.ObjectKeyFromObject(gw), func(g *gwv1.Gateway) { g.Spec.Infrastructure = nil })
	tagged("without labels no user tag is left", nil, "team", model.TagManaged)
	lbs := h.gatewayALBs(t, ns, "gw")
	if len(lbs) != 1 || lbs[0].Tags["cost-center"] != "42" {
		t.Errorf("after the label changes the load balancers are %+v: want one, still with the tag someone else put there (cost-center=42)", lbs)
	}
}

package lbcontroller_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/lbcontroller"
	"github.com/flatnet/flatnet/lbcontroller/deploy"
	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
	"github.com/flatnet/flatnet/providers/aws"
)

// TestGatewayControllerAWSDriver runs the controller with the AWS driver (fakecloud's ELBv2
// facade), whose application load balancers serve HTTP/HTTPS only: a Gateway mixing HTTP and
// TLS passthrough and TCP gets a companion network load balancer at its second address; of two
// TLSRoutes with different backends the older is served and the newer is not accepted (no SNI
// routing), though the newer's hostname comes first in SNI order and its name first
// alphabetically; a weighted TCPRoute forwards to its heaviest backend and stays accepted, its
// message naming the backend that gets nothing; deleting the Gateway deletes both load
// balancers.
func TestGatewayControllerAWSDriver(t *testing.T) {
	var drv *aws.LoadBalancing   // the controller's driver
	var modifyRules atomic.Int64 // its ModifyRule calls
	countModifyRule := func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("CountModifyRule", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if awsmiddleware.GetOperationName(ctx) == "ModifyRule" {
				modifyRules.Add(1)
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	}
	// A resync a second: a rule the driver read back otherwise than the deploy wants it would be
	// modified again at each (httpRouteRewriteOnELBv2 counts).
	h := startCloud(t, func(ctx context.Context, cloud *servertest.Env, subnetID string) providers.LoadBalancing {
		key := servertest.LoadBalancerAWSKey(cloud.LoadBalancerToken(t))
		cfg := awssdk.Config{
			Region: "us-east-1", BaseEndpoint: awssdk.String(cloud.URL),
			Credentials: awssdk.CredentialsProviderFunc(func(context.Context) (awssdk.Credentials, error) {
				return awssdk.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey, SessionToken: key.SessionToken, Source: "fakecloud"}, nil
			}),
			APIOptions: []func(*middleware.Stack) error{countModifyRule},
		}
		d, err := aws.NewLoadBalancing(ctx, aws.LBConfig{Config: aws.Config{AWS: &cfg}, SubnetID: subnetID, PollInterval: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		drv = d
		return d
	}, servertest.Options{}, func(c *lbcontroller.Config) { c.Resync = time.Second })
	ctx := context.Background()
	class := h.gatewayClass(t)
	ns := h.namespace(t)
	for name, ip := range map[string]string{"secure": "10.0.1.40", "other": "10.0.1.41"} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
		}}
		if err := h.k8s.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
		if err := h.k8s.Create(ctx, endpointSlice(ns, name, readyEP(ip))); err != nil {
			t.Fatal(err)
		}
	}
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mixed"}, Spec: gwv1.GatewaySpec{
		GatewayClassName: gwv1.ObjectName(class),
		Listeners: []gwv1.Listener{
			{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType},
			{Name: "tls", Port: 443, Protocol: gwv1.TLSProtocolType, TLS: &gwv1.ListenerTLSConfig{Mode: ptr(gwv1.TLSModePassthrough)}},
			{Name: "db", Port: 5432, Protocol: gwv1.TCPProtocolType},
		},
	}}
	if err := h.k8s.Create(ctx, gw); err != nil {
		t.Fatal(err)
	}
	// secure is the older route (created a second earlier: creationTimestamp has seconds), other
	// the newer, first in SNI order (a.example.com) and by name.
	for _, r := range []struct{ name, host string }{{"secure", "b.example.com"}, {"other", "a.example.com"}} {
		if r.name == "other" {
			var older gwv1.TLSRoute
			if err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "secure"}, &older); err != nil {
				t.Fatal(err)
			}
			eventually(t, "a second after the older route's creationTimestamp", func() (bool, string) {
				return time.Now().Truncate(time.Second).After(older.CreationTimestamp.Time), older.CreationTimestamp.String()
			})
		}
		if err := h.k8s.Create(ctx, &gwv1.TLSRoute{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: r.name},
			Spec: gwv1.TLSRouteSpec{
				CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "mixed", SectionName: ptr(gwv1.SectionName("tls"))}}},
				Hostnames:       []gwv1.Hostname{gwv1.Hostname(r.host)},
				Rules: []gwv1.TLSRouteRule{{BackendRefs: []gwv1.BackendRef{
					{BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(r.name), Port: ptr(gwv1.PortNumber(80))}},
				}}},
			},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.k8s.Create(ctx, &gwv1.TCPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Spec: gwv1.TCPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "mixed", SectionName: ptr(gwv1.SectionName("db"))}}},
			Rules: []gwv1.TCPRouteRule{{BackendRefs: []gwv1.BackendRef{
				{BackendObjectReference: gwv1.BackendObjectReference{Name: "other", Port: ptr(gwv1.PortNumber(80))}, Weight: ptr(int32(1))},
				{BackendObjectReference: gwv1.BackendObjectReference{Name: "secure", Port: ptr(gwv1.PortNumber(80))}, Weight: ptr(int32(3))},
			}}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Gateway is programmed with two addresses", func() (bool, string) {
		var g gwv1.Gateway
		if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(gw), &g); err != nil {
			return false, err.Error()
		}
		prog := meta.FindStatusCondition(g.Status.Conditions, string(gwv1.GatewayConditionProgrammed))
		return prog != nil && prog.Status == metav1.ConditionTrue && len(g.Status.Addresses) == 2 && g.Status.Addresses[0].Value != g.Status.Addresses[1].Value, fmt.Sprintf("%+v", g.Status)
	})
	l4 := map[string]string{model.TagCluster: h.cluster, lbcontroller.TagGateway: ns + "/mixed", deploy.TagLayer: deploy.LayerL4}
	var nlbs []providers.LoadBalancer
	eventually(t, "the network load balancer has TCP/443 and TCP/5432", func() (bool, string) {
		var err error
		nlbs, err = h.p.ListLoadBalancers(ctx, l4)
		return err == nil && len(nlbs) == 1 && len(nlbs[0].Listeners) == 2, fmt.Sprintf("%+v (%v)", nlbs, err)
	})
	// Both listeners forward to the secure pod: TLS 443 as the older TLSRoute's backend, TCP
	// 5432 as the weighted TCPRoute's heaviest.
	for _, l := range nlbs[0].Listeners {
		if ths, err := h.p.DescribeTargets(ctx, l.TargetGroupID); err != nil || l.Protocol != providers.ProtocolTCP || len(ths) != 1 || ths[0].Target.IP.String() != "10.0.1.40" {
			t.Errorf("listener %+v forwards to %+v (%v); want the secure pod 10.0.1.40", l, ths, err)
		}
	}
	eventually(t, "the weighted TCPRoute is accepted, its message naming the backend left out", func() (bool, string) {
		var r gwv1.TCPRoute
		if err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "db"}, &r); err != nil || len(r.Status.Parents) != 1 {
			return false, fmt.Sprintf("%+v %v", r.Status, err)
		}
		c := meta.FindStatusCondition(r.Status.Parents[0].Conditions, string(gwv1.RouteConditionAccepted))
		return c != nil && c.Status == metav1.ConditionTrue && strings.Contains(c.Message, ns+"/other:80 (weight 1) gets none"), fmt.Sprintf("%+v", r.Status.Parents[0].Conditions)
	})
	eventually(t, "the second TLSRoute is not accepted", func() (bool, string) {
		var r gwv1.TLSRoute
		if err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "other"}, &r); err != nil || len(r.Status.Parents) != 1 {
			return false, fmt.Sprintf("%+v %v", r.Status, err)
		}
		c := meta.FindStatusCondition(r.Status.Parents[0].Conditions, string(gwv1.RouteConditionAccepted))
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == string(gwv1.RouteReasonUnsupportedValue), fmt.Sprintf("%+v", r.Status.Parents[0].Conditions)
	})
	// Each route's status is its own write: the first one's may land after the second's.
	eventually(t, "the first TLSRoute is accepted", func() (bool, string) {
		var first gwv1.TLSRoute
		if err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "secure"}, &first); err != nil || len(first.Status.Parents) != 1 {
			return false, fmt.Sprintf("%+v %v", first.Status, err)
		}
		return meta.IsStatusConditionTrue(first.Status.Parents[0].Conditions, string(gwv1.RouteConditionAccepted)),
			fmt.Sprintf("%+v", first.Status.Parents[0].Conditions)
	})
	httpRoutesELBv2CannotExpress(t, h, ns, class, gw)
	httpRouteRewriteOnELBv2(t, h, drv, &modifyRules, ns, gw)
	if err := h.k8s.Delete(ctx, gw); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both load balancers are gone", func() (bool, string) {
		lbs, err := h.p.ListLoadBalancers(ctx, map[string]string{model.TagCluster: h.cluster})
		albs, err2 := h.p.ListApplicationLoadBalancers(ctx, map[string]string{model.TagCluster: h.cluster, lbcontroller.TagGateway: ns + "/mixed"})
		return err == nil && err2 == nil && len(lbs) == 0 && len(albs) == 0, fmt.Sprintf("%d network, %d application (%v %v)", len(lbs), len(albs), err, err2)
	})

	// The driver creates no load balancer at a given address: a Service pinning one is refused
	// before any cloud call, and nothing is created.
	if err := h.k8s.Create(ctx, lbService(ns, "pinned", func(s *corev1.Service) { s.Spec.LoadBalancerIP = "198.51.100.240" })); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pinned Service is refused", func() (bool, string) {
		c := condition(h.service(t, ns, "pinned"))
		lbs, _ := h.owned(t, ns, "pinned")
		return c != nil && c.Reason == lbcontroller.ReasonInvalid && strings.Contains(c.Message, "take no address") && len(lbs) == 0,
			fmt.Sprintf("condition %+v, cloud %+v", c, lbs)
	})
}

// httpRoutesELBv2CannotExpress: on the programmed Gateway gw, an HTTPRoute with a rule ELBv2
// cannot express (a request timeout) and one it can is served in part: the expressible rule
// reaches the cloud, the route stays Accepted and is PartiallyInvalid, with an event; a route
// whose only rule changes response headers is not Accepted (UnsupportedValue); the Gateway
// stays Programmed. The GatewayClass lists neither feature, and keeps query matching and the
// host and path rewrites (ELBv2's rule transforms).
func httpRoutesELBv2CannotExpress(t *testing.T, h *harness, ns, class string, gw *gwv1.Gateway) {
	t.Helper()
	ctx := context.Background()
	parent := gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: gwv1.ObjectName(gw.Name), SectionName: ptr(gwv1.SectionName("http"))}}}
	backend := []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "secure", Port: ptr(gwv1.PortNumber(80))}}}}
	prefix := func(p string) []gwv1.HTTPRouteMatch {
		return []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: ptr(gwv1.PathMatchPathPrefix), Value: ptr(p)}}}
	}
	for _, r := range []*gwv1.HTTPRoute{
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "partly"}, Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: parent, Rules: []gwv1.HTTPRouteRule{
			{Matches: prefix("/slow"), BackendRefs: backend, Timeouts: &gwv1.HTTPRouteTimeouts{Request: ptr(gwv1.Duration("5s"))}},
			{Matches: prefix("/served"), BackendRefs: backend},
		}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "headers"}, Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: parent, Rules: []gwv1.HTTPRouteRule{
			{Matches: prefix("/h"), BackendRefs: backend, Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterResponseHeaderModifier,
				ResponseHeaderModifier: &gwv1.HTTPHeaderFilter{Set: []gwv1.HTTPHeader{{Name: "X-A", Value: "1"}}}}}},
		}}},
	} {
		if err := h.k8s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	route := func(name string) (*gwv1.RouteParentStatus, string) {
		var r gwv1.HTTPRoute
		if err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &r); err != nil || len(r.Status.Parents) != 1 {
			return nil, fmt.Sprintf("%s: %+v %v", name, r.Status, err)
		}
		return &r.Status.Parents[0], fmt.Sprintf("%s: %+v", name, r.Status.Parents[0].Conditions)
	}
	eventually(t, "the route with a timeout rule is accepted and PartiallyInvalid", func() (bool, string) {
		p, msg := route("partly")
		if p == nil {
			return false, msg
		}
		pi := meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionPartiallyInvalid))
		return meta.IsStatusConditionTrue(p.Conditions, string(gwv1.RouteConditionAccepted)) && pi != nil && pi.Status == metav1.ConditionTrue &&
			pi.Reason == string(gwv1.RouteReasonUnsupportedValue) && strings.Contains(pi.Message, "rule 0: ELBv2 cannot express per-rule timeouts"), msg
	})
	eventually(t, "the route whose only rule changes response headers is not accepted", func() (bool, string) {
		p, msg := route("headers")
		if p == nil {
			return false, msg
		}
		c := meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionAccepted))
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == string(gwv1.RouteReasonUnsupportedValue) &&
			strings.Contains(c.Message, "request or response header changes"), msg
	})
	l7 := map[string]string{model.TagCluster: h.cluster, lbcontroller.TagGateway: ns + "/" + gw.Name, deploy.TagLayer: deploy.LayerL7}
	eventually(t, "the expressible rule is in the cloud, the others are not", func() (bool, string) {
		albs, err := h.p.ListApplicationLoadBalancers(ctx, l7)
		if err != nil || len(albs) != 1 {
			return false, fmt.Sprintf("%+v %v", albs, err)
		}
		var paths []string
		for _, l := range albs[0].Listeners {
			rules, err := h.p.ListRules(ctx, l.ID)
			if err != nil {
				return false, err.Error()
			}
			for _, r := range rules {
				if r.Conditions.Path != nil {
					paths = append(paths, r.Conditions.Path.Value)
				}
			}
		}
		got := strings.Join(paths, " ")
		return strings.Contains(got, "/served") && !strings.Contains(got, "/slow") && !strings.Contains(got, "/h"), "rule paths: " + got
	})
	eventually(t, "events on both routes", func() (bool, string) {
		partly, headers := strings.Join(h.gatewayEvents(t, ns, "partly"), "\n"), strings.Join(h.gatewayEvents(t, ns, "headers"), "\n")
		return strings.Contains(partly, "PartiallyInvalid: Gateway "+ns+"/"+gw.Name+": Dropped Rule(s): rule 0: ELBv2 cannot express per-rule timeouts") &&
			strings.Contains(headers, "UnsupportedValue: Gateway "+ns+"/"+gw.Name+": the cloud's load balancer cannot express any rule"), partly + " | " + headers
	})
	var g gwv1.Gateway
	if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(gw), &g); err != nil {
		t.Fatal(err)
	}
	if !meta.IsStatusConditionTrue(g.Status.Conditions, string(gwv1.GatewayConditionProgrammed)) {
		t.Errorf("Gateway: %+v; want Programmed", g.Status.Conditions)
	}
	var gc gwv1.GatewayClass
	if err := h.k8s.Get(ctx, client.ObjectKey{Name: class}, &gc); err != nil {
		t.Fatal(err)
	}
	features := map[gwv1.FeatureName]bool{}
	for _, f := range gc.Status.SupportedFeatures {
		features[f.Name] = true
	}
	if features["HTTPRouteRequestTimeout"] || features["HTTPRouteResponseHeaderModification"] || features["GatewayHTTPSListenerDetectMisdirectedRequests"] ||
		features["TLSRouteModeTerminate"] || features["BackendTLSPolicy"] || features["BackendTLSPolicySANValidation"] || features["GatewayBackendClientCertificate"] ||
		features["GatewayFrontendClientCertificateValidation"] ||
		!features["HTTPRouteQueryParamMatching"] || !features["HTTPRoute"] || !features["HTTPRouteHostRewrite"] || !features["HTTPRoutePathRewrite"] {
		t.Errorf("GatewayClass features with the AWS driver: %v", gc.Status.SupportedFeatures)
	}
}

// httpRouteRewriteOnELBv2: on the programmed Gateway gw, an HTTPRoute whose URLRewrite sets
// the hostname and replaces the matched prefix is served whole (Accepted, not
// PartiallyInvalid): its rule is in the cloud with ELBv2's transforms, read back by the driver
// as the rewrite it was written with (so the deploy finds it as wanted), and taking the filter
// away takes the transforms away. d is the controller's driver, which reads the transforms
// (fakecloud's driver, h.p, reads fakecloud's own rewrites); modifies counts its ModifyRule
// calls: none while the controller resyncs a rule it finds as wanted (the route's prefix is
// written "/rw/", which the cloud keeps as "/rw").
func httpRouteRewriteOnELBv2(t *testing.T, h *harness, d *aws.LoadBalancing, modifies *atomic.Int64, ns string, gw *gwv1.Gateway) {
	t.Helper()
	ctx := context.Background()
	r := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rewrite"}, Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: gwv1.ObjectName(gw.Name), SectionName: ptr(gwv1.SectionName("http"))}}},
		Rules: []gwv1.HTTPRouteRule{{
			Matches:     []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: ptr(gwv1.PathMatchPathPrefix), Value: ptr("/rw/")}}}, // the trailing "/" is dropped: one spelling
			BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "secure", Port: ptr(gwv1.PortNumber(80))}}}},
			Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterURLRewrite, URLRewrite: &gwv1.HTTPURLRewriteFilter{
				Hostname: ptr(gwv1.PreciseHostname("internal.example.com")),
				Path:     &gwv1.HTTPPathModifier{Type: gwv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr("")},
			}}},
		}},
	}}
	if err := h.k8s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rewriting route is accepted whole", func() (bool, string) {
		var got gwv1.HTTPRoute
		if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(r), &got); err != nil || len(got.Status.Parents) != 1 {
			return false, fmt.Sprintf("%+v %v", got.Status, err)
		}
		c := got.Status.Parents[0].Conditions
		return meta.IsStatusConditionTrue(c, string(gwv1.RouteConditionAccepted)) && !meta.IsStatusConditionTrue(c, string(gwv1.RouteConditionPartiallyInvalid)), fmt.Sprintf("%+v", c)
	})
	l7 := map[string]string{model.TagCluster: h.cluster, lbcontroller.TagGateway: ns + "/" + gw.Name, deploy.TagLayer: deploy.LayerL7}
	rewriteOf := func() (*providers.Rewrite, string, bool) {
		albs, err := d.ListApplicationLoadBalancers(ctx, l7)
		if err != nil || len(albs) != 1 {
			return nil, fmt.Sprintf("%+v %v", albs, err), false
		}
		for _, l := range albs[0].Listeners {
			rules, err := d.ListRules(ctx, l.ID)
			if err != nil {
				return nil, err.Error(), false
			}
			for _, rule := range rules {
				if p := rule.Conditions.Path; p != nil && p.Type == providers.MatchPrefix && p.Value == "/rw" {
					return rule.Action.Rewrite, rule.ID, true
				}
			}
		}
		return nil, "no rule for /rw", false
	}
	// ReplacePrefixMatch "" is "/" (the translator's spelling, which the driver reads back).
	want := &providers.Rewrite{Host: "internal.example.com", Path: &providers.PathModifier{Type: providers.ReplacePrefixMatch, Value: "/"}}
	var ruleID string
	eventually(t, "the rule is in the cloud with its rewrite", func() (bool, string) {
		rw, id, ok := rewriteOf()
		ruleID = id
		return ok && reflect.DeepEqual(rw, want), fmt.Sprintf("%+v (%s)", rw, id)
	})
	before := modifies.Load()
	time.Sleep(3 * time.Second) // three resyncs
	if n := modifies.Load() - before; n != 0 {
		t.Errorf("%d ModifyRule calls over three resyncs of an unchanged route; want none (a rule read back otherwise than written?)", n)
	}
	if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(r), r); err != nil {
		t.Fatal(err)
	}
	r.Spec.Rules[0].Filters = nil
	if err := h.k8s.Update(ctx, r); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rule in the cloud without a rewrite", func() (bool, string) {
		rw, id, ok := rewriteOf()
		return ok && rw == nil, fmt.Sprintf("%+v (%s, was %s)", rw, id, ruleID)
	})
}

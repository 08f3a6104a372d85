package lbcontroller_test

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/lbcontroller"
	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
)

// TestGatewayController runs the Gateway controller against a real API server (with the
// chart's Gateway API CRDs) and an in-process fakecloud: statuses written back as the spec
// defines them, the application load balancer deployed and removed, bad input reported on the
// object it concerns while the rest of the Gateway keeps working.
func TestGatewayController(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	class := h.gatewayClass(t)
	other := class + "-other"
	if err := h.k8s.Create(ctx, &gwv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: other},
		Spec:       gwv1.GatewayClassSpec{ControllerName: "example.com/someone-else"},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "our GatewayClass is Accepted and SupportedVersion, and lists its supported features", func() (bool, string) {
		var gc gwv1.GatewayClass
		if err := h.k8s.Get(ctx, client.ObjectKey{Name: class}, &gc); err != nil {
			return false, err.Error()
		}
		acc := meta.FindStatusCondition(gc.Status.Conditions, string(gwv1.GatewayClassConditionStatusAccepted))
		ver := meta.FindStatusCondition(gc.Status.Conditions, string(gwv1.GatewayClassConditionStatusSupportedVersion))
		if !equality.Semantic.DeepEqual(gc.Status.SupportedFeatures, gateway.SupportedFeatures()) {
			return false, fmt.Sprintf("status.supportedFeatures %v, want %v", gc.Status.SupportedFeatures, gateway.SupportedFeatures())
		}
		return acc != nil && acc.Status == metav1.ConditionTrue && acc.ObservedGeneration == gc.Generation &&
			ver != nil && ver.Status == metav1.ConditionTrue, fmt.Sprintf("%+v", gc.Status.Conditions)
	})

	ns := h.namespace(t)
	backend := func(name string, ips ...string) {
		t.Helper()
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": name},
				Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
			},
		}
		if err := h.k8s.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
		var eps []endpoint
		for _, ip := range ips {
			eps = append(eps, readyEP(ip))
		}
		if err := h.k8s.Create(ctx, endpointSlice(ns, name, eps...)); err != nil {
			t.Fatal(err)
		}
	}
	backend("web", "10.0.1.20", "10.0.1.21")
	backend("canary", "10.0.1.30")

	gw := &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gw"},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: gwv1.ObjectName(class),
			Listeners: []gwv1.Listener{
				{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType},
				// A second HTTPS listener whose certificate Secret does not exist.
				{Name: "https", Port: 443, Protocol: gwv1.HTTPSProtocolType, TLS: &gwv1.ListenerTLSConfig{
					Mode: ptr(gwv1.TLSModeTerminate), CertificateRefs: []gwv1.SecretObjectReference{{Name: "missing"}},
				}},
			},
		},
	}
	if err := h.k8s.Create(ctx, gw); err != nil {
		t.Fatal(err)
	}
	if err := h.k8s.Create(ctx, &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "not-ours"},
		Spec:       gwv1.GatewaySpec{GatewayClassName: gwv1.ObjectName(other), Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}},
	}); err != nil {
		t.Fatal(err)
	}
	parent := gwv1.ParentReference{Name: "gw"}
	route := &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "split"},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{parent}},
			Rules: []gwv1.HTTPRouteRule{{
				BackendRefs: []gwv1.HTTPBackendRef{
					{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "web", Port: ptr(gwv1.PortNumber(80))}, Weight: ptr(int32(90))}},
					{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "canary", Port: ptr(gwv1.PortNumber(80))}, Weight: ptr(int32(10))}},
				},
			}},
		},
	}
	if err := h.k8s.Create(ctx, route); err != nil {
		t.Fatal(err)
	}

	var vip string
	eventually(t, "the Gateway is Programmed with the load balancer's address; the https listener names its missing Secret", func() (bool, string) {
		var g gwv1.Gateway
		if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(gw), &g); err != nil {
			return false, err.Error()
		}
		prog := meta.FindStatusCondition(g.Status.Conditions, string(gwv1.GatewayConditionProgrammed))
		if prog == nil || prog.Status != metav1.ConditionTrue || len(g.Status.Addresses) != 1 || len(g.Status.Listeners) != 2 {
			return false, fmt.Sprintf("%+v", g.Status)
		}
		byName := map[gwv1.SectionName]gwv1.ListenerStatus{}
		for _, l := range g.Status.Listeners {
			byName[l.Name] = l
		}
		refs := meta.FindStatusCondition(byName["https"].Conditions, string(gwv1.ListenerConditionResolvedRefs))
		httpProg := meta.FindStatusCondition(byName["http"].Conditions, string(gwv1.ListenerConditionProgrammed))
		if refs == nil || refs.Status != metav1.ConditionFalse || refs.Reason != string(gwv1.ListenerReasonInvalidCertificateRef) ||
			httpProg == nil || httpProg.Status != metav1.ConditionTrue || byName["http"].AttachedRoutes != 1 {
			return false, fmt.Sprintf("listeners %+v", g.Status.Listeners)
		}
		vip = g.Status.Addresses[0].Value
		return true, ""
	})
	routeParent := func(name string) (gwv1.RouteParentStatus, bool) {
		var r gwv1.HTTPRoute
		if err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &r); err != nil {
			return gwv1.RouteParentStatus{}, false
		}
		for _, p := range r.Status.Parents {
			if p.ControllerName == gateway.ControllerName {
				return p, true
			}
		}
		return gwv1.RouteParentStatus{}, false
	}
	eventually(t, "the route is Accepted with resolved refs", func() (bool, string) {
		p, ok := routeParent("split")
		acc := meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionAccepted))
		refs := meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionResolvedRefs))
		return ok && acc != nil && acc.Status == metav1.ConditionTrue && refs != nil && refs.Status == metav1.ConditionTrue,
			fmt.Sprintf("%+v", p)
	})

	// The cloud: one application load balancer at the Gateway's address, its targets the
	// endpoints of both backends.
	alb := func() []providers.ApplicationLoadBalancer { return h.gatewayALBs(t, ns, "gw") }
	lbs := alb()
	if len(lbs) != 1 || lbs[0].VIP.String() != vip {
		t.Fatalf("cloud load balancers %+v, Gateway address %s", lbs, vip)
	}
	tgs, err := h.p.ListTargetGroups(ctx, map[string]string{model.TagCluster: h.cluster, lbcontroller.TagGateway: ns + "/gw"})
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, tg := range tgs {
		ths, err := h.p.DescribeTargets(ctx, tg.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, th := range ths {
			targets = append(targets, th.Target.IP.String())
		}
	}
	slices.Sort(targets)
	if want := []string{"10.0.1.20", "10.0.1.21", "10.0.1.30"}; !slices.Equal(targets, want) {
		t.Fatalf("targets %v, want %v", targets, want)
	}

	// A gated pod behind a Gateway backend: registered while its gate is False, the gate True
	// once the cloud reports it healthy in the Gateway's target group.
	h.gatedPod(t, ns, "gw-gated", "gwgated", "10.0.1.40")
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gwgated"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "gwgated"},
			Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if err := h.k8s.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if err := h.k8s.Create(ctx, endpointSlice(ns, "gwgated", endpoint{ip: "10.0.1.40", pod: "gw-gated"})); err != nil {
		t.Fatal(err)
	}
	if err := h.k8s.Create(ctx, &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gated"},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{parent}},
			Hostnames:       []gwv1.Hostname{"gated.example.com"},
			Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
				Name: "gwgated", Port: ptr(gwv1.PortNumber(80)),
			}}}}}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	var gatedTG string
	eventually(t, "the gated pod is registered in the Gateway's target group while its gate says initial", func() (bool, string) {
		tgs, err := h.p.ListTargetGroups(ctx, map[string]string{model.TagCluster: h.cluster, lbcontroller.TagGateway: ns + "/gw"})
		if err != nil {
			return false, err.Error()
		}
		for _, tg := range tgs {
			ths, _ := h.p.DescribeTargets(ctx, tg.ID)
			for _, th := range ths {
				if th.Target.IP.String() == "10.0.1.40" {
					gatedTG = tg.ID
				}
			}
		}
		c := h.gate(t, ns, "gw-gated")
		return gatedTG != "" && c != nil && c.Status == corev1.ConditionFalse && c.Reason == "TargetInitial", fmt.Sprintf("group %q, gate %+v", gatedTG, c)
	})
	if _, err := h.cloud.Admin.ReportTargetHealth(ctx, &api.ReportTargetHealthRequest{Reports: []api.TargetHealthReport{
		{TargetGroupID: gatedTG, IP: "10.0.1.40", Port: 8080, State: api.TargetHealthHealthy},
	}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the gate flips True once the cloud reports the target healthy", func() (bool, string) {
		c := h.gate(t, ns, "gw-gated")
		return c != nil && c.Status == corev1.ConditionTrue, fmt.Sprintf("%+v", c)
	})

	// Bad input on one route: a backend in another namespace without a ReferenceGrant, and an
	// invalid regex on another. Each gets the spec's reason and an event; the good route stays.
	refRoute := &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cross-ns"},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{parent}},
			Hostnames:       []gwv1.Hostname{"cross.example.com"},
			Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
				Name: "web", Namespace: ptr(gwv1.Namespace("default")), Port: ptr(gwv1.PortNumber(80)),
			}}}}}},
		},
	}
	if err := h.k8s.Create(ctx, refRoute); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the cross-namespace route has ResolvedRefs False/RefNotPermitted and an event", func() (bool, string) {
		p, _ := routeParent("cross-ns")
		refs := meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionResolvedRefs))
		if refs == nil || refs.Status != metav1.ConditionFalse || refs.Reason != string(gwv1.RouteReasonRefNotPermitted) {
			return false, fmt.Sprintf("%+v", p.Conditions)
		}
		evs := h.gatewayEvents(t, ns, "cross-ns")
		return len(evs) > 0, fmt.Sprintf("events %v", evs)
	})
	var g gwv1.Gateway
	if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(gw), &g); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(g.Status.Conditions, string(gwv1.GatewayConditionProgrammed)); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("the Gateway stopped being Programmed after a bad route: %+v", g.Status.Conditions)
	}
	// The other class's Gateway has no status of ours and no load balancer.
	var notOurs gwv1.Gateway
	if err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "not-ours"}, &notOurs); err != nil {
		t.Fatal(err)
	}
	if len(notOurs.Status.Addresses) != 0 || meta.FindStatusCondition(notOurs.Status.Conditions, string(gwv1.GatewayConditionProgrammed)).Status == metav1.ConditionTrue {
		t.Fatalf("a Gateway of another class got our status: %+v", notOurs.Status)
	}

	// More bad input on a second Gateway: two listeners conflicting on one port (HTTP and TCP;
	// the CRD itself refuses two of one protocol without hostnames), a malformed
	// certificate Secret, a certificate in a Secret of the wrong type (which the controller's
	// cache does not hold: it must still say what is wrong, not that the Secret is missing),
	// and a route with an invalid regex in one of its two rules. Each gets its reason and an
	// event; the valid listener and the valid rule are served.
	if err := h.k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "garbage"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": []byte("not a certificate"), "tls.key": []byte("not a key")},
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "opaque"},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"tls.crt": []byte("a certificate"), "tls.key": []byte("a key")},
	}); err != nil {
		t.Fatal(err)
	}
	bad := &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad"},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: gwv1.ObjectName(class),
			Listeners: []gwv1.Listener{
				{Name: "a", Port: 8080, Protocol: gwv1.HTTPProtocolType},
				{Name: "b", Port: 8080, Protocol: gwv1.TCPProtocolType},
				{Name: "ok", Port: 8081, Protocol: gwv1.HTTPProtocolType},
				{Name: "tls", Port: 8443, Protocol: gwv1.HTTPSProtocolType, TLS: &gwv1.ListenerTLSConfig{
					Mode: ptr(gwv1.TLSModeTerminate), CertificateRefs: []gwv1.SecretObjectReference{{Name: "garbage"}},
				}},
				{Name: "opaque", Port: 8444, Protocol: gwv1.HTTPSProtocolType, TLS: &gwv1.ListenerTLSConfig{
					Mode: ptr(gwv1.TLSModeTerminate), CertificateRefs: []gwv1.SecretObjectReference{{Name: "opaque"}},
				}},
			},
		},
	}
	if err := h.k8s.Create(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if err := h.k8s.Create(ctx, &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "regex"},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "bad", SectionName: ptr(gwv1.SectionName("ok"))}}},
			Rules: []gwv1.HTTPRouteRule{
				{
					Matches:     []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: ptr(gwv1.PathMatchRegularExpression), Value: ptr("/items/(\\d+")}}},
					BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "web", Port: ptr(gwv1.PortNumber(80))}}}},
				},
				{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "canary", Port: ptr(gwv1.PortNumber(80))}}}}},
			},
		},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the bad Gateway's listeners and the regex route carry their reasons and events", func() (bool, string) {
		var g gwv1.Gateway
		if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(bad), &g); err != nil {
			return false, err.Error()
		}
		byName := map[gwv1.SectionName][]metav1.Condition{}
		attached := map[gwv1.SectionName]int32{}
		for _, l := range g.Status.Listeners {
			byName[l.Name], attached[l.Name] = l.Conditions, l.AttachedRoutes
		}
		want := []struct {
			listener gwv1.SectionName
			typ      string
			status   metav1.ConditionStatus
			reason   string
		}{
			{"a", string(gwv1.ListenerConditionConflicted), metav1.ConditionTrue, string(gwv1.ListenerReasonProtocolConflict)},
			{"b", string(gwv1.ListenerConditionConflicted), metav1.ConditionTrue, string(gwv1.ListenerReasonProtocolConflict)},
			{"tls", string(gwv1.ListenerConditionResolvedRefs), metav1.ConditionFalse, string(gwv1.ListenerReasonInvalidCertificateRef)},
			{"opaque", string(gwv1.ListenerConditionResolvedRefs), metav1.ConditionFalse, string(gwv1.ListenerReasonInvalidCertificateRef)},
			{"ok", string(gwv1.ListenerConditionProgrammed), metav1.ConditionTrue, string(gwv1.ListenerReasonProgrammed)},
		}
		for _, w := range want {
			c := meta.FindStatusCondition(byName[w.listener], w.typ)
			if c == nil || c.Status != w.status || c.Reason != w.reason {
				return false, fmt.Sprintf("listener %s: %s is %+v, want %s/%s", w.listener, w.typ, c, w.status, w.reason)
			}
		}
		if c := meta.FindStatusCondition(byName["opaque"], string(gwv1.ListenerConditionResolvedRefs)); !strings.Contains(c.Message, `type is "Opaque"`) {
			return false, fmt.Sprintf("listener opaque: ResolvedRefs says %q, want the Secret's wrong type named", c.Message)
		}
		if attached["ok"] != 1 {
			return false, fmt.Sprintf("listener ok has %d routes attached, want 1", attached["ok"])
		}
		p, _ := routeParent("regex")
		acc := meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionAccepted))
		partly := meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionPartiallyInvalid))
		if acc == nil || acc.Status != metav1.ConditionTrue || partly == nil || partly.Status != metav1.ConditionTrue {
			return false, fmt.Sprintf("route regex: %+v", p.Conditions)
		}
		gwEvents := strings.Join(h.gatewayEvents(t, ns, "bad"), "\n")
		routeEvents := strings.Join(h.gatewayEvents(t, ns, "regex"), "\n")
		for _, want := range []string{"ProtocolConflict: listener a", "InvalidCertificateRef: listener opaque: Secret " + ns + `/opaque: type is "Opaque"`,
			"; listener tls: Secret " + ns + "/garbage"} {
			if !strings.Contains(gwEvents, want) {
				return false, fmt.Sprintf("no event %q on the Gateway: %s", want, gwEvents)
			}
		}
		if !strings.Contains(routeEvents, "PartiallyInvalid: ") || !strings.Contains(routeEvents, "not valid RE2") {
			return false, "route events: " + routeEvents
		}
		return true, ""
	})
	// The valid listener is served: port 8081 forwards to canary only (the valid rule).
	bads := h.gatewayALBs(t, ns, "bad")
	if len(bads) != 1 {
		t.Fatalf("the bad Gateway's load balancers: %+v", bads)
	}
	var ports []int
	for _, l := range bads[0].Listeners {
		ports = append(ports, l.Port)
	}
	slices.Sort(ports)
	if !slices.Equal(ports, []int{8081}) {
		t.Errorf("the bad Gateway's load balancer listens on %v, want only the valid listener's 8081", ports)
	}

	// A certificate Secret of the wrong type created after its Gateway: the cache watches no
	// such Secret, yet the listener comes to name the wrong type, with nothing else changing.
	late := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "late"}, Spec: gwv1.GatewaySpec{
		GatewayClassName: gwv1.ObjectName(class),
		Listeners: []gwv1.Listener{{Name: "https", Port: 8445, Protocol: gwv1.HTTPSProtocolType, TLS: &gwv1.ListenerTLSConfig{
			Mode: ptr(gwv1.TLSModeTerminate), CertificateRefs: []gwv1.SecretObjectReference{{Name: "late"}},
		}}},
	}}
	if err := h.k8s.Create(ctx, late); err != nil {
		t.Fatal(err)
	}
	lateRefs := func() string {
		var g gwv1.Gateway
		if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(late), &g); err != nil || len(g.Status.Listeners) != 1 {
			return fmt.Sprintf("%+v %v", g.Status, err)
		}
		c := meta.FindStatusCondition(g.Status.Listeners[0].Conditions, string(gwv1.ListenerConditionResolvedRefs))
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != string(gwv1.ListenerReasonInvalidCertificateRef) {
			return fmt.Sprintf("%+v", c)
		}
		return c.Message
	}
	eventually(t, "the late Gateway's listener says its Secret does not exist", func() (bool, string) {
		m := lateRefs()
		return strings.Contains(m, "not found") || strings.Contains(m, "does not exist"), m
	})
	if err := h.k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "late"},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"tls.crt": []byte("a certificate"), "tls.key": []byte("a key")},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the late Gateway's listener names its Secret's wrong type", func() (bool, string) {
		m := lateRefs()
		return strings.Contains(m, `type is "Opaque"`), m
	})
	if err := h.k8s.Delete(ctx, late); err != nil {
		t.Fatal(err)
	}

	// Static addresses: the Gateway's load balancer is created at its spec.addresses value; an
	// address the cloud refuses (outside its pool) is Programmed False AddressNotUsable with the
	// cloud's reason, and the load balancer serving stays; so does it while the Gateway asks
	// for two addresses (a load balancer has one).
	pinned := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pinned"}, Spec: gwv1.GatewaySpec{
		GatewayClassName: gwv1.ObjectName(class),
		Addresses:        []gwv1.GatewaySpecAddress{{Type: ptr(gwv1.IPAddressType), Value: "198.51.100.230"}},
		Listeners:        []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}},
	}}
	if err := h.k8s.Create(ctx, pinned); err != nil {
		t.Fatal(err)
	}
	programmed := func(want gwv1.GatewayConditionReason, says string) {
		t.Helper()
		eventually(t, fmt.Sprintf("the pinned Gateway is Programmed %s saying %q", want, says), func() (bool, string) {
			var g gwv1.Gateway
			if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(pinned), &g); err != nil {
				return false, err.Error()
			}
			c := meta.FindStatusCondition(g.Status.Conditions, string(gwv1.GatewayConditionProgrammed))
			if c == nil || c.Reason != string(want) || c.ObservedGeneration != g.Generation || !strings.Contains(c.Message, says) {
				return false, fmt.Sprintf("%+v (generation %d), addresses %v", c, g.Generation, g.Status.Addresses)
			}
			return len(g.Status.Addresses) == 1 && g.Status.Addresses[0].Value == "198.51.100.230", fmt.Sprint(g.Status.Addresses)
		})
	}
	programmed(gwv1.GatewayReasonProgrammed, "")
	pinnedLB := func() []providers.ApplicationLoadBalancer { return h.gatewayALBs(t, ns, "pinned") }
	before := pinnedLB()
	if len(before) != 1 || before[0].VIP != netip.MustParseAddr("198.51.100.230") {
		t.Fatalf("the pinned Gateway's load balancers %+v; want one at 198.51.100.230", before)
	}
	setAddresses := func(as ...gwv1.GatewaySpecAddress) {
		t.Helper()
		update(t, h, client.ObjectKeyFromObject(pinned), func(g *gwv1.Gateway) { g.Spec.Addresses = as })
	}
	setAddresses(gwv1.GatewaySpecAddress{Type: ptr(gwv1.IPAddressType), Value: "203.0.113.5"})
	programmed(gwv1.GatewayReasonAddressNotUsable, "not an address of the public pool")
	if after := pinnedLB(); len(after) != 1 || after[0].ID != before[0].ID {
		t.Errorf("after asking for an unusable address: %+v; want %s serving on", after, before[0].ID)
	}
	setAddresses(gwv1.GatewaySpecAddress{Type: ptr(gwv1.IPAddressType), Value: "198.51.100.230"}, gwv1.GatewaySpecAddress{Type: ptr(gwv1.IPAddressType), Value: "198.51.100.231"})
	programmed(gwv1.GatewayReasonAddressNotUsable, "asks for 2 addresses")
	if after := pinnedLB(); len(after) != 1 || after[0].ID != before[0].ID {
		t.Errorf("while asking for two addresses: %+v; want %s serving on", after, before[0].ID)
	}
	setAddresses(gwv1.GatewaySpecAddress{Type: ptr(gwv1.IPAddressType), Value: "198.51.100.230"})
	programmed(gwv1.GatewayReasonProgrammed, "")
	if err := h.k8s.Delete(ctx, pinned); err != nil {
		t.Fatal(err)
	}

	// A Gateway of a TLS-passthrough listener, and a UDP and a TCP listener on port 53 (as DNS
	// has): all are served by one application load balancer (one address), the TLS listener
	// routing by SNI, the UDP one forwarding to the UDPRoute's pods, the TCP one to the
	// TCPRoute's; the Gateway and every listener are Programmed.
	backend("secure", "10.0.1.40")
	dnsSvc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dns"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "dns"},
			Ports: []corev1.ServicePort{{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(5353)}}},
	}
	if err := h.k8s.Create(ctx, dnsSvc); err != nil {
		t.Fatal(err)
	}
	dnsSlice := endpointSlice(ns, "dns", readyEP("10.0.1.50"))
	dnsSlice.Ports = []discoveryv1.EndpointPort{{Name: ptr("dns"), Port: ptr(int32(5353)), Protocol: ptr(corev1.ProtocolUDP)}}
	if err := h.k8s.Create(ctx, dnsSlice); err != nil {
		t.Fatal(err)
	}
	if err := h.k8s.Create(ctx, &gwv1.UDPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dns"},
		Spec: gwv1.UDPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "passthrough", SectionName: ptr(gwv1.SectionName("dns"))}}},
			Rules: []gwv1.UDPRouteRule{{BackendRefs: []gwv1.BackendRef{
				{BackendObjectReference: gwv1.BackendObjectReference{Name: "dns", Port: ptr(gwv1.PortNumber(53))}},
			}}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	passthrough := &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "passthrough"},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: gwv1.ObjectName(class),
			Listeners: []gwv1.Listener{
				{Name: "tls", Port: 443, Protocol: gwv1.TLSProtocolType, TLS: &gwv1.ListenerTLSConfig{Mode: ptr(gwv1.TLSModePassthrough)}},
				{Name: "dns", Port: 53, Protocol: gwv1.UDPProtocolType},
				{Name: "dns-tcp", Port: 53, Protocol: gwv1.TCPProtocolType},
			},
		},
	}
	if err := h.k8s.Create(ctx, passthrough); err != nil {
		t.Fatal(err)
	}
	if err := h.k8s.Create(ctx, &gwv1.TLSRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "secure"},
		Spec: gwv1.TLSRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "passthrough", SectionName: ptr(gwv1.SectionName("tls"))}}},
			Hostnames:       []gwv1.Hostname{"secure.example.com"},
			Rules: []gwv1.TLSRouteRule{{BackendRefs: []gwv1.BackendRef{
				{BackendObjectReference: gwv1.BackendObjectReference{Name: "secure", Port: ptr(gwv1.PortNumber(80))}},
			}}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.k8s.Create(ctx, &gwv1.TCPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dns-tcp"},
		Spec: gwv1.TCPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "passthrough", SectionName: ptr(gwv1.SectionName("dns-tcp"))}}},
			Rules: []gwv1.TCPRouteRule{{BackendRefs: []gwv1.BackendRef{
				{BackendObjectReference: gwv1.BackendObjectReference{Name: "secure", Port: ptr(gwv1.PortNumber(80))}},
			}}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the passthrough Gateway's status", func() (bool, string) {
		var g gwv1.Gateway
		if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(passthrough), &g); err != nil {
			return false, err.Error()
		}
		acc := meta.FindStatusCondition(g.Status.Conditions, string(gwv1.GatewayConditionAccepted))
		prog := meta.FindStatusCondition(g.Status.Conditions, string(gwv1.GatewayConditionProgrammed))
		if acc == nil || acc.Status != metav1.ConditionTrue || acc.ObservedGeneration != g.Generation || len(g.Status.Addresses) != 1 ||
			prog == nil || prog.Status != metav1.ConditionTrue || prog.ObservedGeneration != g.Generation {
			return false, fmt.Sprintf("status %+v", g.Status)
		}
		byName := map[gwv1.SectionName]gwv1.ListenerStatus{}
		for _, l := range g.Status.Listeners {
			byName[l.Name] = l
		}
		tls := meta.FindStatusCondition(byName["tls"].Conditions, string(gwv1.ListenerConditionProgrammed))
		dns := meta.FindStatusCondition(byName["dns"].Conditions, string(gwv1.ListenerConditionProgrammed))
		dnsTCP := meta.FindStatusCondition(byName["dns-tcp"].Conditions, string(gwv1.ListenerConditionProgrammed))
		if tls == nil || tls.Status != metav1.ConditionTrue || byName["tls"].AttachedRoutes != 1 ||
			dns == nil || dns.Status != metav1.ConditionTrue || byName["dns"].AttachedRoutes != 1 ||
			dnsTCP == nil || dnsTCP.Status != metav1.ConditionTrue || byName["dns-tcp"].AttachedRoutes != 1 {
			return false, fmt.Sprintf("listeners %+v", g.Status.Listeners)
		}
		return true, ""
	})
	ptags := map[string]string{model.TagCluster: h.cluster, lbcontroller.TagGateway: ns + "/passthrough"}
	plbs, err := h.p.ListApplicationLoadBalancers(ctx, ptags)
	if err != nil || len(plbs) != 1 || len(plbs[0].Listeners) != 3 {
		t.Fatalf("the passthrough Gateway's application load balancers %+v (%v), want one with the TCP, UDP and TLS listeners", plbs, err)
	}
	pls := slices.Clone(plbs[0].Listeners)
	slices.SortFunc(pls, func(a, b providers.HTTPListener) int {
		return cmp.Or(a.Port-b.Port, strings.Compare(a.Protocol, b.Protocol))
	})
	if l := pls[0]; l.Protocol != providers.ProtocolTCP || l.Port != 53 || len(l.DefaultAction.Forward) != 1 {
		t.Errorf("listener %+v; want TCP/53 forwarding to the TCPRoute's group", l)
	} else if ths, err := h.p.DescribeTargets(ctx, l.DefaultAction.Forward[0].TargetGroupID); err != nil || len(ths) != 1 || ths[0].Target.IP.String() != "10.0.1.40" {
		t.Errorf("the TCPRoute's target group has %+v (%v), want the secure pod 10.0.1.40", ths, err)
	}
	pls = pls[1:]
	if l := pls[0]; l.Protocol != providers.ProtocolUDP || l.Port != 53 || len(l.DefaultAction.Forward) != 1 {
		t.Errorf("listener %+v; want UDP/53 forwarding to the UDPRoute's group", l)
	} else if ths, err := h.p.DescribeTargets(ctx, l.DefaultAction.Forward[0].TargetGroupID); err != nil || len(ths) != 1 || ths[0].Target.IP.String() != "10.0.1.50" || ths[0].Target.Port != 5353 {
		t.Errorf("the UDPRoute's target group has %+v (%v), want the dns pod 10.0.1.50:5353", ths, err)
	}
	if l := pls[1]; l.Protocol != providers.ProtocolTLS || l.Port != 443 || len(l.DefaultAction.Forward) != 0 {
		t.Errorf("listener %+v; want TLS/443 refusing names no route takes", l)
	}
	rules, err := h.p.ListRules(ctx, pls[1].ID)
	if err != nil || len(rules) != 1 || !slices.Equal(rules[0].Conditions.Hosts, []string{"secure.example.com"}) || len(rules[0].Action.Forward) != 1 {
		t.Fatalf("TLS rules %+v (%v); want secure.example.com forwarded to one group", rules, err)
	}
	ths, err := h.p.DescribeTargets(ctx, rules[0].Action.Forward[0].TargetGroupID)
	if err != nil || len(ths) != 1 || ths[0].Target.IP.String() != "10.0.1.40" {
		t.Errorf("the TLSRoute's target group has %+v (%v), want the secure pod 10.0.1.40", ths, err)
	}

	// Deleting the Gateway deletes its load balancer, target groups included, and the routes
	// lose our parent entries.
	if err := h.k8s.Delete(ctx, gw); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Gateway's cloud resources are gone", func() (bool, string) {
		lbs := alb()
		tgs, err := h.p.ListTargetGroups(ctx, map[string]string{model.TagCluster: h.cluster, lbcontroller.TagGateway: ns + "/gw"})
		return err == nil && len(lbs) == 0 && len(tgs) == 0, fmt.Sprintf("%d load balancers, %d target groups, %v", len(lbs), len(tgs), err)
	})
	eventually(t, "the routes lose our parent status", func() (bool, string) {
		p, ok := routeParent("split")
		return !ok, fmt.Sprintf("%+v", p)
	})
}

// gatewayEvents returns the reasons and notes of warning events about a Gateway API object.
func (h *harness) gatewayEvents(t testing.TB, ns, name string) []string {
	t.Helper()
	var evs corev1.EventList
	if err := h.k8s.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs.Items {
		if e.InvolvedObject.Name == name && fromUs(e) && e.Type == corev1.EventTypeWarning {
			out = append(out, e.Reason+": "+e.Message)
		}
	}
	return out
}

package lbcontroller_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/lbcontroller"
	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
	"github.com/flatnet/flatnet/providers/providertest"
)

// testCA is a certificate in PEM, as the CA bundle of a ConfigMap (the controller and the cloud
// only parse it here; no handshake is made).
func testCA(t testing.TB, name string) string {
	t.Helper()
	crt, _ := providertest.SelfSigned(t, name)
	return string(crt)
}

// TestGatewayBackendTLSPolicy: a BackendTLSPolicy makes the Service port's target group an HTTPS
// group that verifies the pods' certificates with the policy's CA ConfigMap and hostname; the
// policy's status names the Gateway as its ancestor. A new CA in the ConfigMap replaces the
// group (a group's TLS cannot change); a missing ConfigMap takes the policy's acceptance away
// (NoValidCACertificate) and the backend's group with it (a 500 share, never unverified).
// caConfigMap creates ConfigMap ns/name holding a new CA certificate for name cn under
// ca.crt, and returns the PEM and the ConfigMap.
func (h *harness) caConfigMap(t testing.TB, ns, name, cn string) (string, *corev1.ConfigMap) {
	t.Helper()
	ca := testCA(t, cn)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string]string{"ca.crt": ca}}
	if err := h.k8s.Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	return ca, cm
}

// tlsSecret creates kubernetes.io/tls Secret ns/name with a new self-signed certificate for
// host and returns the certificate's PEM.
func (h *harness) tlsSecret(t testing.TB, ns, name, host string) []byte {
	t.Helper()
	crt, key := providertest.SelfSigned(t, host)
	if err := h.k8s.Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key},
	}); err != nil {
		t.Fatal(err)
	}
	return crt
}

// namedPortService creates Service ns/name with one TCP port, portName, to the pods' target
// port, and its EndpointSlice of one ready endpoint at ip.
func (h *harness) namedPortService(t testing.TB, ns, name, portName string, port, target int32, ip string) {
	t.Helper()
	ctx := context.Background()
	if err := h.k8s.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: portName, Protocol: corev1.ProtocolTCP, Port: port, TargetPort: intstr.FromInt32(target)}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	sl := endpointSlice(ns, name, readyEP(ip))
	sl.Ports[0].Name, sl.Ports[0].Port = ptr(portName), ptr(target)
	if err := h.k8s.Create(ctx, sl); err != nil {
		t.Fatal(err)
	}
}

func TestGatewayBackendTLSPolicy(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	class := h.gatewayClass(t)
	ns := h.namespace(t)
	h.namedPortService(t, ns, "secure", "https", 443, 8443, "10.0.1.50")
	ca1, cm := h.caConfigMap(t, ns, "backend-ca", "ca-one.example")
	policy := &gwv1.BackendTLSPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "secure"},
		Spec: gwv1.BackendTLSPolicySpec{
			TargetRefs: []gwv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{
				Group: "", Kind: "Service", Name: "secure"}, SectionName: ptr(gwv1.SectionName("https"))}},
			Validation: gwv1.BackendTLSPolicyValidation{
				CACertificateRefs: []gwv1.LocalObjectReference{{Group: "", Kind: "ConfigMap", Name: "backend-ca"}},
				Hostname:          "secure.example.com",
				SubjectAltNames:   []gwv1.SubjectAltName{{Type: gwv1.URISubjectAltNameType, URI: "spiffe://example.com/secure"}},
			},
		},
	}
	if err := h.k8s.Create(ctx, policy); err != nil {
		t.Fatal(err)
	}
	h.httpGateway(t, ns, class)
	h.httpRoute(t, ns, "secure", "secure", 443)

	policyCondition := func(typ string) (*metav1.Condition, string) {
		var p gwv1.BackendTLSPolicy
		if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(policy), &p); err != nil {
			return nil, err.Error()
		}
		for _, a := range p.Status.Ancestors {
			if a.ControllerName == gateway.ControllerName && a.AncestorRef.Name == "gw" && a.AncestorRef.Namespace != nil && string(*a.AncestorRef.Namespace) == ns &&
				a.AncestorRef.Kind != nil && *a.AncestorRef.Kind == "Gateway" {
				c := meta.FindStatusCondition(a.Conditions, typ)
				if c != nil && c.ObservedGeneration != p.Generation {
					return nil, fmt.Sprintf("%s of generation %d, the policy's is %d", typ, c.ObservedGeneration, p.Generation)
				}
				return c, fmt.Sprintf("%+v", a.Conditions)
			}
		}
		return nil, fmt.Sprintf("ancestors %+v", p.Status.Ancestors)
	}
	// The Gateway's groups: the route has one backend, so there is one group, or none.
	groups := func() ([]providers.TargetGroup, string) {
		tgs, err := h.p.ListTargetGroups(ctx, map[string]string{model.TagCluster: h.cluster, lbcontroller.TagGateway: ns + "/gw"})
		if err != nil {
			return nil, err.Error()
		}
		return tgs, fmt.Sprintf("%+v", tgs)
	}
	wantGroup := func(ca string) func() (bool, string) {
		return func() (bool, string) {
			if c, msg := policyCondition(string(gwv1.PolicyConditionAccepted)); c == nil || c.Status != metav1.ConditionTrue {
				return false, "Accepted: " + msg
			}
			if c, msg := policyCondition(string(gwv1.BackendTLSPolicyConditionResolvedRefs)); c == nil || c.Status != metav1.ConditionTrue {
				return false, "ResolvedRefs: " + msg
			}
			tgs, msg := groups()
			if len(tgs) != 1 || tgs[0].TLS == nil {
				return false, "groups " + msg
			}
			tls := tgs[0].TLS
			return tgs[0].Protocol == "HTTPS" && tls.ServerName == "secure.example.com" && bytes.Equal(tls.CAPEM, []byte(ca)) && !tls.SystemRoots &&
				len(tls.SubjectAltNames) == 1 && tls.SubjectAltNames[0] == (providers.SubjectAltName{Type: providers.SANURI, Value: "spiffe://example.com/secure"}), msg
		}
	}
	eventually(t, "the policy is Accepted with the Gateway as ancestor, and the backend's group verifies with its CA", wantGroup(ca1))

	// A new CA in the ConfigMap: the group that verifies with it replaces the old one.
	ca2 := testCA(t, "ca-two.example")
	update(t, h, client.ObjectKeyFromObject(cm), func(c *corev1.ConfigMap) { c.Data["ca.crt"] = ca2 })
	eventually(t, "the ConfigMap's new CA replaces the group", wantGroup(ca2))

	// A backend client certificate: the group presents it (a new group, as its name covers
	// the certificate), and the Gateway's ResolvedRefs says it resolved.
	h.tlsSecret(t, ns, "client", "gateway-client.example")
	update(t, h, client.ObjectKey{Namespace: ns, Name: "gw"}, func(g *gwv1.Gateway) {
		g.Spec.TLS = &gwv1.GatewayTLSConfig{Backend: &gwv1.GatewayBackendTLS{ClientCertificateRef: &gwv1.SecretObjectReference{Name: "client"}}}
	})
	eventually(t, "the group presents the Gateway's client certificate; the Gateway's ResolvedRefs is True", func() (bool, string) {
		var g gwv1.Gateway
		if err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "gw"}, &g); err != nil {
			return false, err.Error()
		}
		if c := meta.FindStatusCondition(g.Status.Conditions, string(gwv1.GatewayConditionResolvedRefs)); c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != g.Generation {
			return false, fmt.Sprintf("Gateway conditions %+v", g.Status.Conditions)
		}
		tgs, msg := groups()
		if len(tgs) != 1 || tgs[0].TLS == nil || tgs[0].ClientCertificateID == "" {
			return false, "groups " + msg
		}
		certs, err := h.p.ListCertificates(ctx, map[string]string{model.TagCluster: h.cluster, lbcontroller.TagGateway: ns + "/gw"})
		if err != nil {
			return false, err.Error()
		}
		for _, c := range certs {
			if c.ID == tgs[0].ClientCertificateID {
				return true, ""
			}
		}
		return false, fmt.Sprintf("the group presents %s, not among the Gateway's certificates %+v", tgs[0].ClientCertificateID, certs)
	})
	// A Secret that does not exist: ResolvedRefs False, and the group presents nothing.
	update(t, h, client.ObjectKey{Namespace: ns, Name: "gw"}, func(g *gwv1.Gateway) {
		g.Spec.TLS.Backend.ClientCertificateRef.Name = "no-such-secret"
	})
	eventually(t, "with its Secret missing the Gateway's ResolvedRefs is InvalidClientCertificateRef and the group presents nothing", func() (bool, string) {
		var g gwv1.Gateway
		if err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "gw"}, &g); err != nil {
			return false, err.Error()
		}
		if c := meta.FindStatusCondition(g.Status.Conditions, string(gwv1.GatewayConditionResolvedRefs)); c == nil || c.Status != metav1.ConditionFalse ||
			c.Reason != string(gwv1.GatewayReasonInvalidClientCertificateRef) {
			return false, fmt.Sprintf("Gateway conditions %+v", g.Status.Conditions)
		}
		tgs, msg := groups()
		return len(tgs) == 1 && tgs[0].TLS != nil && tgs[0].ClientCertificateID == "", "groups " + msg
	})

	// The ConfigMap gone: no valid CA; the policy is not accepted and nothing is sent to the
	// backend unverified.
	if err := h.k8s.Delete(ctx, cm); err != nil {
		t.Fatal(err)
	}
	eventually(t, "without its ConfigMap the policy is not accepted and the backend has no group", func() (bool, string) {
		acc, msg := policyCondition(string(gwv1.PolicyConditionAccepted))
		if acc == nil || acc.Status != metav1.ConditionFalse || acc.Reason != string(gwv1.BackendTLSPolicyReasonNoValidCACertificate) {
			return false, "Accepted: " + msg
		}
		refs, msg := policyCondition(string(gwv1.BackendTLSPolicyConditionResolvedRefs))
		if refs == nil || refs.Status != metav1.ConditionFalse || refs.Reason != string(gwv1.BackendTLSPolicyReasonInvalidCACertificateRef) {
			return false, "ResolvedRefs: " + msg
		}
		tgs, msg := groups()
		return len(tgs) == 0, "groups " + msg
	})
}

// TestGatewayFrontendClientValidation: a Gateway's spec.tls.frontend makes the cloud's HTTPS
// listener validate client certificates against the CA ConfigMap (AllowValidOnly), or ask for
// one without checking (AllowInsecureFallback, with the Gateway's InsecureFrontendValidationMode
// condition); a CA reference that resolves to nothing refuses the listener (NoValidCACertificate)
// and the cloud's listener goes, rather than take clients unverified.
func TestGatewayFrontendClientValidation(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	class := h.gatewayClass(t)
	ns := h.namespace(t)
	h.webService(t, ns, "10.0.1.60")
	ca, _ := h.caConfigMap(t, ns, "client-ca", "client-ca.example")
	h.tlsSecret(t, ns, "server", "gateway-server.example")
	if err := h.k8s.Create(ctx, &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gw"},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: gwv1.ObjectName(class),
			Listeners: []gwv1.Listener{{Name: "https", Port: 443, Protocol: gwv1.HTTPSProtocolType, TLS: &gwv1.ListenerTLSConfig{
				Mode: ptr(gwv1.TLSModeTerminate), CertificateRefs: []gwv1.SecretObjectReference{{Name: "server"}}}}},
			TLS: &gwv1.GatewayTLSConfig{Frontend: &gwv1.FrontendTLSConfig{Default: gwv1.TLSConfig{Validation: &gwv1.FrontendTLSValidation{
				CACertificateRefs: []gwv1.ObjectReference{{Group: "", Kind: "ConfigMap", Name: "client-ca"}}}}}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	h.httpRoute(t, ns, "web", "web", 80)
	cloudListener := func() (*providers.HTTPListener, string) {
		lbs := h.gatewayALBs(t, ns, "gw")
		if len(lbs) != 1 {
			return nil, fmt.Sprintf("load balancers %+v", lbs)
		}
		for i, l := range lbs[0].Listeners {
			if l.Port == 443 {
				return &lbs[0].Listeners[i], fmt.Sprintf("%+v", l)
			}
		}
		return nil, fmt.Sprintf("listeners %+v", lbs[0].Listeners)
	}
	gateway := func() gwv1.Gateway {
		var g gwv1.Gateway
		if err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "gw"}, &g); err != nil {
			t.Fatal(err)
		}
		return g
	}
	eventually(t, "the cloud's HTTPS listener verifies client certificates against the ConfigMap's CA", func() (bool, string) {
		l, msg := cloudListener()
		return l != nil && l.ClientValidation != nil && l.ClientValidation.Verify && string(l.ClientValidation.CAPEM) == ca, msg
	})
	if c := meta.FindStatusCondition(gateway().Status.Conditions, string(gwv1.GatewayConditionInsecureFrontendValidationMode)); c != nil {
		t.Errorf("AllowValidOnly, yet %+v", c)
	}

	update(t, h, client.ObjectKey{Namespace: ns, Name: "gw"}, func(g *gwv1.Gateway) {
		g.Spec.TLS.Frontend.Default.Validation.Mode = gwv1.AllowInsecureFallback
	})
	eventually(t, "AllowInsecureFallback: the listener asks without verifying; the Gateway says it is insecure", func() (bool, string) {
		l, msg := cloudListener()
		if l == nil || l.ClientValidation == nil || l.ClientValidation.Verify {
			return false, msg
		}
		g := gateway()
		c := meta.FindStatusCondition(g.Status.Conditions, string(gwv1.GatewayConditionInsecureFrontendValidationMode))
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == string(gwv1.GatewayReasonConfigurationChanged) && c.ObservedGeneration == g.Generation,
			fmt.Sprintf("%+v", g.Status.Conditions)
	})

	update(t, h, client.ObjectKey{Namespace: ns, Name: "gw"}, func(g *gwv1.Gateway) {
		g.Spec.TLS.Frontend.Default.Validation = &gwv1.FrontendTLSValidation{CACertificateRefs: []gwv1.ObjectReference{{Group: "", Kind: "ConfigMap", Name: "no-such-ca"}}}
	})
	eventually(t, "no valid CA: the listener is refused (NoValidCACertificate) and the cloud's listener goes", func() (bool, string) {
		g := gateway()
		if len(g.Status.Listeners) != 1 {
			return false, fmt.Sprintf("%+v", g.Status.Listeners)
		}
		acc := meta.FindStatusCondition(g.Status.Listeners[0].Conditions, string(gwv1.ListenerConditionAccepted))
		refs := meta.FindStatusCondition(g.Status.Listeners[0].Conditions, string(gwv1.ListenerConditionResolvedRefs))
		if acc == nil || acc.Reason != string(gwv1.ListenerReasonNoValidCACertificate) || refs == nil || refs.Reason != string(gwv1.ListenerReasonInvalidCACertificateRef) {
			return false, fmt.Sprintf("%+v", g.Status.Listeners[0].Conditions)
		}
		l, msg := cloudListener()
		return l == nil, msg
	})
}

// TestGatewayBackendTLSPolicyTLSRoute: a BackendTLSPolicy on the backend of a TLSRoute behind a
// TLS listener in mode Terminate makes the Gateway's group for it a TLS group that verifies the
// pods with the policy's CA and hostname (the load balancer begins TLS again), which the
// listener's rule for the route's hostname forwards to; the policy has the Gateway as ancestor.
func TestGatewayBackendTLSPolicyTLSRoute(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	class := h.gatewayClass(t)
	ns := h.namespace(t)
	h.namedPortService(t, ns, "db", "tls", 5432, 5432, "10.0.1.70")
	ca, _ := h.caConfigMap(t, ns, "db-ca", "db-ca.example")
	policy := &gwv1.BackendTLSPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Spec: gwv1.BackendTLSPolicySpec{
			TargetRefs: []gwv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{
				Group: "", Kind: "Service", Name: "db"}}},
			Validation: gwv1.BackendTLSPolicyValidation{
				CACertificateRefs: []gwv1.LocalObjectReference{{Group: "", Kind: "ConfigMap", Name: "db-ca"}},
				Hostname:          "db.internal.example",
			},
		},
	}
	if err := h.k8s.Create(ctx, policy); err != nil {
		t.Fatal(err)
	}
	h.tlsSecret(t, ns, "server", "db.example.com")
	if err := h.k8s.Create(ctx, &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gw"},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: gwv1.ObjectName(class),
			Listeners: []gwv1.Listener{{Name: "db", Port: 443, Protocol: gwv1.TLSProtocolType, Hostname: ptr(gwv1.Hostname("db.example.com")),
				TLS: &gwv1.ListenerTLSConfig{Mode: ptr(gwv1.TLSModeTerminate), CertificateRefs: []gwv1.SecretObjectReference{{Name: "server"}}}}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.k8s.Create(ctx, &gwv1.TLSRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Spec: gwv1.TLSRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}},
			Hostnames:       []gwv1.Hostname{"db.example.com"},
			Rules: []gwv1.TLSRouteRule{{BackendRefs: []gwv1.BackendRef{{
				BackendObjectReference: gwv1.BackendObjectReference{Name: "db", Port: ptr(gwv1.PortNumber(5432))}}}}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the TLS listener's rule for db.example.com forwards to a TLS group verifying with the policy's CA, and the policy is Accepted", func() (bool, string) {
		var p gwv1.BackendTLSPolicy
		if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(policy), &p); err != nil {
			return false, err.Error()
		}
		accepted := false
		for _, a := range p.Status.Ancestors {
			if a.ControllerName == gateway.ControllerName && a.AncestorRef.Name == "gw" {
				c := meta.FindStatusCondition(a.Conditions, string(gwv1.PolicyConditionAccepted))
				accepted = c != nil && c.Status == metav1.ConditionTrue
			}
		}
		if !accepted {
			return false, fmt.Sprintf("policy ancestors %+v", p.Status.Ancestors)
		}
		lbs := h.gatewayALBs(t, ns, "gw")
		if len(lbs) != 1 || len(lbs[0].Listeners) != 1 {
			return false, fmt.Sprintf("load balancers %+v", lbs)
		}
		rules, err := h.p.ListRules(ctx, lbs[0].Listeners[0].ID)
		if err != nil || len(rules) != 1 || len(rules[0].Action.Forward) != 1 || rules[0].Action.TLSPassthrough {
			return false, fmt.Sprintf("rules %+v (%v)", rules, err)
		}
		tgs, err := h.p.ListTargetGroups(ctx, map[string]string{model.TagCluster: h.cluster, lbcontroller.TagGateway: ns + "/gw"})
		if err != nil {
			return false, err.Error()
		}
		for _, tg := range tgs {
			if tg.ID == rules[0].Action.Forward[0].TargetGroupID {
				ok := tg.Protocol == providers.ProtocolTLS && tg.TLS != nil && tg.TLS.ServerName == "db.internal.example" && bytes.Equal(tg.TLS.CAPEM, []byte(ca))
				return ok, fmt.Sprintf("group %+v", tg)
			}
		}
		return false, fmt.Sprintf("no group %s among %+v", rules[0].Action.Forward[0].TargetGroupID, tgs)
	})
}

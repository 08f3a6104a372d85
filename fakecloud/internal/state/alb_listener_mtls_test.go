package state

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// httpsListenerReq is CreateListener of an HTTPS listener on 443 of w's load balancer,
// forwarding to w.tg, with the certificate and mutual authentication given.
func (w albWorld) httpsListenerReq(cert string, m *api.MutualAuthentication) *api.CreateListenerRequest {
	return &api.CreateListenerRequest{LoadBalancerID: w.lb.LoadBalancerID, Protocol: api.ProtocolHTTPS, Port: 443,
		Certificates:         []api.ListenerCertificate{{CertificateID: cert}},
		DefaultActions:       []api.Action{{Type: api.ActionTypeForward, TargetGroupID: w.tg.TargetGroupID}},
		MutualAuthentication: m}
}

// TestListenerMutualAuthenticationRefusesBadInput: each bad MutualAuthentication is
// ValidationError with a message naming the field, on CreateListener and ModifyListener, and
// changes nothing.
func TestListenerMutualAuthenticationRefusesBadInput(t *testing.T) {
	s := openT(t, Config{})
	w := newALBWorld(t, s)
	cert := importCert(t, s, "lb.example.com")
	ca, key := testCert(t, []string{"ca.example.com"}, time.Now().Add(time.Hour))
	for _, tc := range []struct {
		name     string
		protocol string // HTTPS when empty
		m        *api.MutualAuthentication
		want     string
	}{
		{"on an HTTP listener", api.ProtocolHTTP, &api.MutualAuthentication{Mode: api.MutualAuthenticationPassthrough},
			"MutualAuthentication applies to HTTPS listeners only (clients present certificates in the TLS handshake the listener terminates); Protocol is HTTP"},
		{"no mode", "", &api.MutualAuthentication{CACertificatesPEM: ca},
			"MutualAuthentication.Mode is required: verify (clients must present a certificate the CA bundle verifies) or passthrough (a certificate is asked for, not required or checked)"},
		{"unknown mode", "", &api.MutualAuthentication{Mode: "Verify", CACertificatesPEM: ca},
			`MutualAuthentication.Mode "Verify" must be verify or passthrough (or, in ModifyListener, off to remove it)`},
		{"off on create", "", &api.MutualAuthentication{Mode: "off"},
			"MutualAuthentication.Mode off removes a listener's MutualAuthentication in ModifyListener; CreateListener takes verify or passthrough, or no MutualAuthentication"},
		{"verify without a bundle", "", &api.MutualAuthentication{Mode: api.MutualAuthenticationVerify},
			"MutualAuthentication.CaCertificatesPem is required with Mode verify: the CA certificates (PEM) clients' certificate chains must end at"},
		{"bundle too big", "", &api.MutualAuthentication{Mode: api.MutualAuthenticationVerify, CACertificatesPEM: strings.Repeat(ca, 64<<10/len(ca)+1)},
			"MutualAuthentication.CaCertificatesPem is "},
		{"bundle not PEM", "", &api.MutualAuthentication{Mode: api.MutualAuthenticationVerify, CACertificatesPEM: "hello"},
			"MutualAuthentication.CaCertificatesPem holds no PEM CERTIFICATE block"},
		{"a key in the bundle", "", &api.MutualAuthentication{Mode: api.MutualAuthenticationPassthrough, CACertificatesPEM: ca + key},
			`MutualAuthentication.CaCertificatesPem: PEM block 1 is "PRIVATE KEY"; want CERTIFICATE blocks only`},
		{"garbage bundle", "", &api.MutualAuthentication{Mode: api.MutualAuthenticationVerify,
			CACertificatesPEM: "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n"},
			"MutualAuthentication.CaCertificatesPem: PEM block 0 is not a valid X.509 certificate"},
		{"text after the bundle", "", &api.MutualAuthentication{Mode: api.MutualAuthenticationVerify, CACertificatesPEM: ca + "junk"},
			"MutualAuthentication.CaCertificatesPem: text after PEM block 1 is not PEM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := w.httpsListenerReq(cert.CertificateID, tc.m)
			if tc.protocol == api.ProtocolHTTP {
				req.Protocol, req.Port, req.Certificates = api.ProtocolHTTP, 8080, nil
			}
			_, err := s.CreateListener(admin(), req)
			wantCode(t, err, api.ErrValidationError)
			if err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CreateListener: error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "PrivateKey") {
				t.Errorf("CreateListener: error %q points at PrivateKey, which a CA bundle has not", err)
			}
			if tc.m.Mode == "off" {
				return // ModifyListener takes it
			}
			_, err = s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: w.listener.ListenerID, Protocol: api.ProtocolHTTPS,
				Certificates: req.Certificates, MutualAuthentication: tc.m})
			if tc.protocol == api.ProtocolHTTP {
				_, err = s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: w.listener.ListenerID, MutualAuthentication: tc.m})
			}
			wantCode(t, err, api.ErrValidationError)
			if err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ModifyListener: error %q does not say %q", err, tc.want)
			}
		})
	}
	d, err := s.DescribeListeners(admin(), &api.DescribeListenersRequest{LoadBalancerID: w.lb.LoadBalancerID})
	mustOK(t, err)
	if len(d.Listeners) != 1 || d.Listeners[0].Protocol != api.ProtocolHTTP || d.Listeners[0].MutualAuthentication != nil {
		t.Errorf("listeners after refusals: %+v", d.Listeners)
	}
}

// TestListenerMutualAuthentication: an HTTPS listener keeps its MutualAuthentication (Create,
// Describe, the snapshot, a restart); the same settings again answer the listener, others are
// DuplicateListener; ModifyListener keeps it when absent, replaces it when present, removes it
// with Mode off, and drops it when the listener stops being HTTPS.
func TestListenerMutualAuthentication(t *testing.T) {
	path := t.TempDir() + "/state.json"
	s := openT(t, Config{StateFile: path})
	w := newALBWorld(t, s)
	cert := importCert(t, s, "lb.example.com")
	ca, _ := testCert(t, []string{"ca.example.com"}, time.Now().Add(time.Hour))
	ca2, _ := testCert(t, []string{"other-ca.example.com"}, time.Now().Add(time.Hour))
	want := &api.MutualAuthentication{Mode: api.MutualAuthenticationVerify, CACertificatesPEM: ca + ca2}
	in := clonePlain(want)
	created, err := s.CreateListener(admin(), w.httpsListenerReq(cert.CertificateID, in))
	mustOK(t, err)
	in.Mode = "scribbled" // the store keeps no reference to the request
	id := created.Listener.ListenerID
	if diff := cmp.Diff(want, created.Listener.MutualAuthentication); diff != "" {
		t.Errorf("CreateListener's MutualAuthentication (-want +got):\n%s", diff)
	}
	again, err := s.CreateListener(admin(), w.httpsListenerReq(cert.CertificateID, clonePlain(want)))
	mustOK(t, err)
	if again.Listener.ListenerID != id {
		t.Errorf("the same settings again made %s, want %s", again.Listener.ListenerID, id)
	}
	for name, other := range map[string]*api.MutualAuthentication{
		"none":        nil,
		"passthrough": {Mode: api.MutualAuthenticationPassthrough, CACertificatesPEM: ca + ca2},
		"other CAs":   {Mode: api.MutualAuthenticationVerify, CACertificatesPEM: ca},
	} {
		_, err := s.CreateListener(admin(), w.httpsListenerReq(cert.CertificateID, other))
		wantCode(t, err, api.ErrDuplicateListener)
		if err != nil && !strings.Contains(err.Error(), "with other settings") {
			t.Errorf("%s: %v", name, err)
		}
	}
	d, err := s.DescribeListeners(admin(), &api.DescribeListenersRequest{ListenerIDs: []string{id}})
	mustOK(t, err)
	if diff := cmp.Diff(want, d.Listeners[0].MutualAuthentication); diff != "" {
		t.Errorf("DescribeListeners' MutualAuthentication (-want +got):\n%s", diff)
	}
	d.Listeners[0].MutualAuthentication.Mode = "scribbled" // an answer shares nothing with the record
	before := s.Snapshot().Listeners
	mustOK(t, s.Close())
	s = openT(t, Config{StateFile: path})
	after := s.Snapshot().Listeners
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("restart changed the listeners (-before +after):\n%s", diff)
	}
	got := func() *api.MutualAuthentication {
		t.Helper()
		d, err := s.DescribeListeners(admin(), &api.DescribeListenersRequest{ListenerIDs: []string{id}})
		mustOK(t, err)
		return d.Listeners[0].MutualAuthentication
	}
	if diff := cmp.Diff(want, got()); diff != "" {
		t.Errorf("MutualAuthentication after a restart (-want +got):\n%s", diff)
	}

	modify := func(req *api.ModifyListenerRequest) *api.MutualAuthentication {
		t.Helper()
		req.ListenerID = id
		m, err := s.ModifyListener(admin(), req)
		mustOK(t, err)
		if diff := cmp.Diff(m.Listener.MutualAuthentication, got()); diff != "" {
			t.Errorf("ModifyListener answered other than DescribeListeners holds (-answered +stored):\n%s", diff)
		}
		return m.Listener.MutualAuthentication
	}
	// Absent keeps it.
	if diff := cmp.Diff(want, modify(&api.ModifyListenerRequest{SSLPolicy: api.SSLPolicyTLS12})); diff != "" {
		t.Errorf("a change without MutualAuthentication (-want +got):\n%s", diff)
	}
	// Present replaces it: passthrough without a bundle.
	pass := &api.MutualAuthentication{Mode: api.MutualAuthenticationPassthrough}
	if diff := cmp.Diff(pass, modify(&api.ModifyListenerRequest{MutualAuthentication: pass})); diff != "" {
		t.Errorf("passthrough (-want +got):\n%s", diff)
	}
	// Off with a bundle is refused and changes nothing.
	_, err = s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: id, MutualAuthentication: &api.MutualAuthentication{Mode: "off", CACertificatesPEM: ca}})
	wantCode(t, err, api.ErrValidationError)
	if err != nil && !strings.Contains(err.Error(), "MutualAuthentication: Mode off removes client certificate validation and takes no CaCertificatesPem") {
		t.Errorf("off with a bundle: %v", err)
	}
	// Off removes it, and again is no change.
	for range 2 {
		if m := modify(&api.ModifyListenerRequest{MutualAuthentication: &api.MutualAuthentication{Mode: "off"}}); m != nil {
			t.Errorf("off left %+v", m)
		}
	}
	// Switching to HTTP drops it; an HTTP listener takes none but off.
	modify(&api.ModifyListenerRequest{MutualAuthentication: want})
	m, err := s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: id, Protocol: api.ProtocolHTTP, Port: 8443})
	mustOK(t, err)
	if m.Listener.MutualAuthentication != nil {
		t.Errorf("an HTTP listener kept %+v", m.Listener.MutualAuthentication)
	}
	_, err = s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: id, MutualAuthentication: pass})
	wantCode(t, err, api.ErrValidationError)
	modify(&api.ModifyListenerRequest{MutualAuthentication: &api.MutualAuthentication{Mode: "off"}})
}

// TestNetworkListenerRefusesMutualAuthentication: a network load balancer's listeners take no
// MutualAuthentication.
func TestNetworkListenerRefusesMutualAuthentication(t *testing.T) {
	s := openT(t, Config{})
	w := newWorld(t, s, "10.0.0.0/16", "10.0.0.0/24")
	lb, err := s.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "nlb", SubnetID: w.subnet})
	mustOK(t, err)
	tg, err := s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "tcp", Protocol: api.ProtocolTCP, Port: 80, VpcID: w.vpc})
	mustOK(t, err)
	req := &api.CreateListenerRequest{LoadBalancerID: lb.LoadBalancer.LoadBalancerID, Protocol: api.ProtocolTCP, Port: 80,
		DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: tg.TargetGroup.TargetGroupID}}}
	l, err := s.CreateListener(admin(), req)
	mustOK(t, err)
	const msg = "SslPolicy, Certificates, HostnameScopes and MutualAuthentication apply to HTTPS listeners of application load balancers only"
	req.Port, req.MutualAuthentication = 81, &api.MutualAuthentication{Mode: api.MutualAuthenticationPassthrough}
	_, err = s.CreateListener(admin(), req)
	wantCode(t, err, api.ErrValidationError)
	if err != nil && !strings.Contains(err.Error(), msg) {
		t.Errorf("CreateListener: %v", err)
	}
	_, err = s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: l.Listener.ListenerID, MutualAuthentication: req.MutualAuthentication})
	wantCode(t, err, api.ErrValidationError)
	if err != nil && !strings.Contains(err.Error(), msg) {
		t.Errorf("ModifyListener: %v", err)
	}
}

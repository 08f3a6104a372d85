package fabric

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/fabric/l7"
)

// TestALBTLSGroup: a TLS group behind a terminating TLS listener is the engine's TLS group
// with the BackendTLS an HTTPS group gets (verification, or InsecureSkipVerify without one,
// and the client certificate read through the certificate source); its TLS checks verify the
// target the same way and present the certificate, its TCP checks only connect.
func TestALBTLSGroup(t *testing.T) {
	ca, _ := selfSigned(t, "ca.example.com")
	certPEM, keyPEM := selfSigned(t, "lb.example.com")
	certs := pemSource{"cert-1": {CertificateID: "cert-1", CertificatePem: certPEM, PrivateKeyPem: keyPEM}}
	v := &api.TLSVerification{ServerName: "db.example.com", CACertificatesPEM: ca,
		SubjectAltNames: []api.SubjectAltName{{Type: api.SANTypeURI, Value: "spiffe://td/db"}}}
	for _, tc := range []struct {
		name      string
		v         *api.TLSVerification
		hc        string
		want      *l7.BackendTLS
		wantCheck *l7.BackendTLS // the TLS check's verification (nil: a TCP check)
	}{
		{"verified, TLS check", v, api.ProtocolTLS,
			&l7.BackendTLS{ServerName: "db.example.com", CAPEM: []byte(ca), SubjectAltNames: []l7.SubjectAltName{{Type: l7.SANURI, Value: "spiffe://td/db"}},
				ClientCertPEM: []byte(certPEM), ClientKeyPEM: []byte(keyPEM)},
			&l7.BackendTLS{ServerName: "db.example.com", CAPEM: []byte(ca), SubjectAltNames: []l7.SubjectAltName{{Type: l7.SANURI, Value: "spiffe://td/db"}}}},
		{"unverified, TLS check", nil, api.ProtocolTLS,
			&l7.BackendTLS{InsecureSkipVerify: true, ClientCertPEM: []byte(certPEM), ClientKeyPEM: []byte(keyPEM)}, &l7.BackendTLS{InsecureSkipVerify: true}},
		{"verified, TCP check", v, api.ProtocolTCP,
			&l7.BackendTLS{ServerName: "db.example.com", CAPEM: []byte(ca), SubjectAltNames: []l7.SubjectAltName{{Type: l7.SANURI, Value: "spiffe://td/db"}},
				ClientCertPEM: []byte(certPEM), ClientKeyPEM: []byte(keyPEM)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := albSnap(tgt("10.0.1.101", 5432, api.TargetHealthHealthy))
			snap.Rules = nil
			snap.Listeners[0] = api.Listener{ListenerID: "l-1", LoadBalancerID: "lb-1", Protocol: api.ProtocolTLS, Port: 5432,
				Certificates:   []api.ListenerCertificate{{CertificateID: "cert-1", IsDefault: true}},
				DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: "tg-1"}}}
			g := &snap.TargetGroups[0]
			g.Protocol, g.TLSVerification, g.ClientCertificateID = api.ProtocolTLS, tc.v, "cert-1"
			g.HealthCheck = api.HealthCheck{Protocol: tc.hc, Port: api.HealthCheckPortTraffic, IntervalSeconds: 15, TimeoutSeconds: 5,
				HealthyThresholdCount: 2, UnhealthyThresholdCount: 2}
			cfg, err := albConfig("lb-1", indexALBs(snap), certs, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.TargetGroups[0]; got.Protocol != l7.ProtocolTLS || !cmp.Equal(got.TLS, tc.want) {
				t.Errorf("group %s: protocol %s, TLS %s", got.Name, got.Protocol, cmp.Diff(tc.want, got.TLS))
			}
			if err := l7.Validate(cfg); err != nil {
				t.Errorf("the engine refuses the translated config: %v", err)
			}
			w, err := Desired(snap)
			if err != nil {
				t.Fatal(err)
			}
			if len(w.Checks) != 1 || w.Checks[0].ClientCertificateID != "cert-1" || !w.Checks[0].TLSGroup {
				t.Fatalf("checks %+v, want the TLS group's target with its client certificate", w.Checks)
			}
			ct := albCheckTarget(w.Checks[0], certs)
			if string(ct.ClientCertPEM) != certPEM || string(ct.ClientKeyPEM) != keyPEM || ct.Check.Protocol != l7.HealthProtocol(tc.hc) {
				t.Errorf("check target %+v, want a %s check presenting cert-1", ct, tc.hc)
			}
			if !cmp.Equal(ct.TLS, tc.wantCheck) {
				t.Errorf("the check's TLS (-want +got):\n%s", cmp.Diff(tc.wantCheck, ct.TLS))
			}
		})
	}
}

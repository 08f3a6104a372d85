package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// writeCert writes a self-signed certificate for name and its key as PEM files.
func writeCert(t *testing.T, name string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestApplicationLoadBalancerCommands(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	vpc := mustJSON[api.CreateVpcResponse](t, env, "vpc", "create", "--cidr", "10.0.0.0/16").Vpc
	sn := mustJSON[api.CreateSubnetResponse](t, env, "subnet", "create", "--vpc", vpc.VpcID, "--cidr", "10.0.0.0/24").Subnet
	lb := mustJSON[api.CreateLoadBalancerResponse](t, env, "lb", "create", "gw", "--subnet", sn.SubnetID, "--type", "application",
		"--public-address", "198.51.100.77", "--private-address", "10.0.0.77").LoadBalancer
	if lb.VIP != "198.51.100.77" || lb.PrivateIPAddress != "10.0.0.77" {
		t.Errorf("lb create --public-address 198.51.100.77 --private-address 10.0.0.77: VIP %s, private %s", lb.VIP, lb.PrivateIPAddress)
	}
	if lb.Type != api.LoadBalancerTypeApplication {
		t.Fatalf("lb create --type application made a %s load balancer", lb.Type)
	}
	attrs := mustJSON[api.ModifyLoadBalancerAttributesResponse](t, env, "lb", "access-logs", lb.LoadBalancerID, "on").Attributes
	if !slices.Contains(attrs, api.Attribute{Key: api.AttributeAccessLogs, Value: "true"}) {
		t.Errorf("lb access-logs on: %+v", attrs)
	}
	if out, err := run(t, env, "lb", "access-logs", lb.LoadBalancerID, "yes"); err == nil || !strings.Contains(err.Error()+out, "on or off") {
		t.Errorf("lb access-logs yes: %q, %v; want an error asking for on or off", out, err)
	}
	web := mustJSON[api.CreateTargetGroupResponse](t, env, "tg", "create", "web", "--vpc", vpc.VpcID, "--port", "8080", "--protocol", "HTTP").TargetGroup
	grpc := mustJSON[api.CreateTargetGroupResponse](t, env, "tg", "create", "grpc", "--vpc", vpc.VpcID, "--port", "50051", "--protocol", "HTTP",
		"--protocol-version", "GRPC").TargetGroup
	if grpc.ProtocolVersion != api.ProtocolVersionGRPC || grpc.HealthCheck.Matcher != "0-99" {
		t.Errorf("gRPC group: %+v", grpc)
	}
	l := mustJSON[api.CreateListenerResponse](t, env, "lb", "listener", "create", lb.LoadBalancerID, "--protocol", "HTTP", "--port", "80",
		"--default-actions", `[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}]`).Listener
	r := mustJSON[api.CreateRuleResponse](t, env, "lb", "rule", "create", l.ListenerID, "--priority", "10", "--path", "/api", "--path-type", "Prefix",
		"--host", "*.example.com", "--target-group", web.TargetGroupID+"=90", "--target-group", grpc.TargetGroupID+"=10").Rule
	if w := r.Actions[0].ForwardConfig.TargetGroups[0].Weight; w == nil || *w != 90 {
		t.Errorf("rule weights: %+v", r.Actions[0].ForwardConfig.TargetGroups)
	}
	r2 := mustJSON[api.CreateRuleResponse](t, env, "lb", "rule", "create", l.ListenerID, "--priority", "20", "--method", "POST", "--header", "X-Env=canary",
		"--query", "v=2", "--fixed-response", "503").Rule
	mustJSON[api.SetRulePrioritiesResponse](t, env, "lb", "rule", "priorities", r.RuleID+"=20", r2.RuleID+"=10")
	out, err := run(t, env, "lb", "rule", "list", l.ListenerID)
	if err != nil || strings.Index(out, r2.RuleID) > strings.Index(out, r.RuleID) || !strings.Contains(out, "default") || !strings.Contains(out, "forward "+web.TargetGroupID+"=90") {
		t.Errorf("lb rule list printed %q, %v; want %s before %s, then the default rule", out, err, r2.RuleID, r.RuleID)
	}
	mustJSON[api.ModifyRuleResponse](t, env, "lb", "rule", "modify", r2.RuleID, "--redirect", api.RedirectHTTP301)
	if _, err := run(t, env, "lb", "rule", "create", l.ListenerID, "--priority", "10", "--path", "/x", "--fixed-response", "200"); err == nil || !strings.Contains(err.Error(), api.CodePriorityInUse) {
		t.Errorf("a taken priority: %v, want PriorityInUse", err)
	}

	certFile, keyFile := writeCert(t, "www.example.com")
	cert := mustJSON[api.ImportCertificateResponse](t, env, "cert", "import", "--cert", certFile, "--key", keyFile).Certificate
	sni := mustJSON[api.ImportCertificateResponse](t, env, "cert", "import", "--cert", certFile, "--key", keyFile).Certificate
	https := mustJSON[api.CreateListenerResponse](t, env, "lb", "listener", "create", lb.LoadBalancerID, "--protocol", "HTTPS", "--port", "443",
		"--target-group", web.TargetGroupID, "--certificate", cert.CertificateID, "--hostname-scope", "a.example.com,*.example.org").Listener
	if len(https.HostnameScopes) != 2 {
		t.Errorf("listener create --hostname-scope: scopes %q", https.HostnameScopes)
	}
	mustJSON[api.AddListenerCertificatesResponse](t, env, "lb", "listener", "certificates", "add", https.ListenerID, sni.CertificateID)
	m := mustJSON[api.ModifyListenerResponse](t, env, "lb", "listener", "modify", https.ListenerID, "--ssl-policy", api.SSLPolicyTLS13Only).Listener
	if m.SSLPolicy != api.SSLPolicyTLS13Only || len(m.Certificates) != 2 || len(m.HostnameScopes) != 2 {
		t.Errorf("listener modify: %+v", m)
	}
	m = mustJSON[api.ModifyListenerResponse](t, env, "lb", "listener", "modify", https.ListenerID, "--hostname-scopes", "").Listener
	if len(m.HostnameScopes) != 0 {
		t.Errorf("listener modify --hostname-scopes '': scopes %q kept", m.HostnameScopes)
	}
	out, err = run(t, env, "cert", "list")
	if err != nil || !strings.Contains(out, https.ListenerID) || strings.Contains(out, "PRIVATE") {
		t.Errorf("cert list printed %q, %v", out, err)
	}
	if _, err := run(t, env, "cert", "delete", cert.CertificateID); err == nil || !strings.Contains(err.Error(), api.CodeResourceInUse) {
		t.Errorf("deleting a certificate in use: %v, want ResourceInUse", err)
	}
	mustJSON[api.RemoveListenerCertificatesResponse](t, env, "lb", "listener", "certificates", "remove", https.ListenerID, sni.CertificateID)
	if _, err := run(t, env, "cert", "delete", sni.CertificateID); err != nil {
		t.Error(err)
	}
	if _, err := run(t, env, "lb", "rule", "delete", r.RuleID, r2.RuleID); err != nil {
		t.Error(err)
	}
	if _, err := run(t, env, "lb", "delete", lb.LoadBalancerID); err != nil {
		t.Fatal(err)
	}
}

func TestParseALBLimits(t *testing.T) {
	l, err := parseALBLimits([]string{"rules-per-load-balancer=1000", "certificates=10"})
	if err != nil || l.RulesPerLoadBalancer != 1000 || l.Certificates != 10 || l.TargetGroupsPerAction != 0 {
		t.Errorf("parseALBLimits = %+v, %v", l, err)
	}
	for _, bad := range []string{"rules=5", "certificates=0", "certificates", "certificates=x"} {
		if _, err := parseALBLimits([]string{bad}); err == nil {
			t.Errorf("parseALBLimits(%q) accepted it", bad)
		}
	}
}

// TestListenerMTLSFlags: listener create's and modify's --mtls and --mtls-ca-file make the
// listener's MutualAuthentication, --mtls off removes it, listener list shows the mode, and
// the server names what is wrong with a bad one.
func TestListenerMTLSFlags(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	vpc := mustJSON[api.CreateVpcResponse](t, env, "vpc", "create", "--cidr", "10.0.0.0/16").Vpc
	subnet := mustJSON[api.CreateSubnetResponse](t, env, "subnet", "create", "--vpc", vpc.VpcID, "--cidr", "10.0.0.0/24").Subnet
	lb := mustJSON[api.CreateLoadBalancerResponse](t, env, "lb", "create", "gw", "--type", "application", "--subnet", subnet.SubnetID).LoadBalancer
	web := mustJSON[api.CreateTargetGroupResponse](t, env, "tg", "create", "web", "--vpc", vpc.VpcID, "--port", "8080", "--protocol", "HTTP").TargetGroup
	certFile, keyFile := writeCert(t, "www.example.com")
	cert := mustJSON[api.ImportCertificateResponse](t, env, "cert", "import", "--cert", certFile, "--key", keyFile).Certificate
	caFile, _ := writeCert(t, "ca.example.com")
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	l := mustJSON[api.CreateListenerResponse](t, env, "lb", "listener", "create", lb.LoadBalancerID, "--protocol", "HTTPS", "--port", "443",
		"--target-group", web.TargetGroupID, "--certificate", cert.CertificateID, "--mtls", "verify", "--mtls-ca-file", caFile).Listener
	want := &api.MutualAuthentication{Mode: api.MutualAuthenticationVerify, CACertificatesPEM: string(ca)}
	if diff := cmp.Diff(want, l.MutualAuthentication); diff != "" {
		t.Errorf("listener create --mtls verify: MutualAuthentication (-want +got):\n%s", diff)
	}
	if out, err := run(t, env, "lb", "listener", "list", lb.LoadBalancerID); err != nil || !strings.Contains(out, "HTTPS (mTLS verify)") {
		t.Errorf("listener list printed %q, %v; want the listener's mTLS mode", out, err)
	}
	m := mustJSON[api.ModifyListenerResponse](t, env, "lb", "listener", "modify", l.ListenerID, "--mtls", "passthrough").Listener
	if diff := cmp.Diff(&api.MutualAuthentication{Mode: api.MutualAuthenticationPassthrough}, m.MutualAuthentication); diff != "" {
		t.Errorf("listener modify --mtls passthrough (-want +got):\n%s", diff)
	}
	m = mustJSON[api.ModifyListenerResponse](t, env, "lb", "listener", "modify", l.ListenerID, "--ssl-policy", api.SSLPolicyTLS12).Listener
	if m.MutualAuthentication == nil {
		t.Errorf("listener modify without --mtls removed the listener's MutualAuthentication")
	}
	m = mustJSON[api.ModifyListenerResponse](t, env, "lb", "listener", "modify", l.ListenerID, "--mtls", "off").Listener
	if m.MutualAuthentication != nil {
		t.Errorf("listener modify --mtls off kept %+v", m.MutualAuthentication)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"modify", l.ListenerID, "--mtls", "verify"}, "MutualAuthentication.CaCertificatesPem is required with Mode verify"},
		{[]string{"modify", l.ListenerID, "--mtls", "strict", "--mtls-ca-file", caFile}, `MutualAuthentication.Mode "strict" must be verify or passthrough`},
		{[]string{"modify", l.ListenerID, "--mtls-ca-file", caFile}, "--mtls-ca-file needs --mtls verify or passthrough"},
		{[]string{"modify", l.ListenerID, "--mtls", "verify", "--mtls-ca-file", keyFile}, `MutualAuthentication.CaCertificatesPem: PEM block 0 is "PRIVATE KEY"`},
		{[]string{"modify", l.ListenerID, "--mtls", "verify", "--mtls-ca-file", t.TempDir() + "/none.pem"}, "--mtls-ca-file: open "},
		{[]string{"create", lb.LoadBalancerID, "--protocol", "HTTP", "--port", "80", "--target-group", web.TargetGroupID, "--mtls", "passthrough"},
			"MutualAuthentication applies to HTTPS listeners only"},
	} {
		out, err := run(t, env, append([]string{"lb", "listener"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error()+out, tc.want) {
			t.Errorf("listener %q: %q, %v; want an error saying %q", tc.args, out, err, tc.want)
		}
	}
}

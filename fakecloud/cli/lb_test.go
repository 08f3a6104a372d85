package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

func TestLoadBalancerCommands(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	vpc := mustJSON[api.CreateVpcResponse](t, env, "vpc", "create", "--cidr", "10.0.0.0/16").Vpc
	sn := mustJSON[api.CreateSubnetResponse](t, env, "subnet", "create", "--vpc", vpc.VpcID, "--cidr", "10.0.0.0/24").Subnet
	lb := mustJSON[api.CreateLoadBalancerResponse](t, env, "lb", "create", "web", "--subnet", sn.SubnetID, "--tag", "owner=flatnet").LoadBalancer
	if lb.Scheme != api.SchemeInternetFacing || lb.PublicIPAddress == "" {
		t.Errorf("lb create: %+v, want an internet-facing load balancer with a public VIP", lb)
	}
	tg := mustJSON[api.CreateTargetGroupResponse](t, env, "tg", "create", "web", "--vpc", vpc.VpcID, "--port", "8080",
		"--hc-protocol", "HTTP", "--hc-path", "/healthz").TargetGroup
	if tg.HealthCheck.Path != "/healthz" || tg.HealthCheck.Matcher != "200-399" {
		t.Errorf("tg create health check: %+v", tg.HealthCheck)
	}
	mustJSON[api.CreateListenerResponse](t, env, "lb", "listener", "create", lb.LoadBalancerID, "--port", "80", "--target-group", tg.TargetGroupID)
	mustJSON[api.ModifyLoadBalancerAttributesResponse](t, env, "lb", "source-ranges", lb.LoadBalancerID, "203.0.113.0/24")
	mustJSON[api.ModifyTargetGroupAttributesResponse](t, env, "tg", "deregistration-delay", tg.TargetGroupID, "30")
	mustJSON[api.RegisterTargetsResponse](t, env, "tg", "register", tg.TargetGroupID, "10.0.0.20", "10.0.0.21:9090")
	mustJSON[api.DeregisterTargetsResponse](t, env, "tg", "deregister", tg.TargetGroupID, "10.0.0.20")
	health := mustJSON[api.DescribeTargetHealthResponse](t, env, "tg", "health", tg.TargetGroupID).TargetHealthDescriptions
	if len(health) != 2 || health[0].TargetHealth.State != api.TargetHealthDraining || health[1].TargetHealth.State != api.TargetHealthInitial {
		t.Errorf("tg health: %+v, want 10.0.0.20 draining and 10.0.0.21:9090 initial", health)
	}
	out, err := run(t, env, "lb", "list", "--tag", "owner=flatnet")
	if err != nil || !strings.Contains(out, lb.LoadBalancerID) || !strings.Contains(out, "203.0.113.0/24") {
		t.Errorf("lb list printed %q, %v; want the load balancer with its source range", out, err)
	}
	out, err = run(t, env, "tg", "health", tg.TargetGroupID)
	if err != nil || !strings.Contains(out, "Target.DeregistrationInProgress") {
		t.Errorf("tg health printed %q, %v", out, err)
	}
	if _, err := run(t, env, "tg", "delete", tg.TargetGroupID); err == nil || !strings.Contains(err.Error(), api.CodeResourceInUse) {
		t.Errorf("deleting a target group in use: %v, want ResourceInUse", err)
	}
	if _, err := run(t, env, "lb", "delete", lb.LoadBalancerID); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, env, "tg", "delete", tg.TargetGroupID); err != nil {
		t.Fatal(err)
	}
}

// TestLoadBalancerListShowsState: `lb list` shows each load balancer's state and, when it
// failed, the data plane's reason; `fault set` takes data-plane operations.
func TestLoadBalancerListShowsState(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	vpc := mustJSON[api.CreateVpcResponse](t, env, "vpc", "create", "--cidr", "10.0.0.0/16").Vpc
	sn := mustJSON[api.CreateSubnetResponse](t, env, "subnet", "create", "--vpc", vpc.VpcID, "--cidr", "10.0.0.0/24").Subnet
	lb := mustJSON[api.CreateLoadBalancerResponse](t, env, "lb", "create", "web", "--subnet", sn.SubnetID).LoadBalancer
	const why = "DataPlane.ProgramLoadBalancer " + "lb-x: netlink receive: operation not permitted"
	if _, err := env.Admin.ReportLoadBalancerState(t.Context(), &api.ReportLoadBalancerStateRequest{Reports: []api.LoadBalancerStateReport{
		{LoadBalancerID: lb.LoadBalancerID, State: api.LoadBalancerStateFailed, Reason: why}}}); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, env, "lb", "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"STATE", "REASON", lb.LoadBalancerID + " ", " failed ", why} {
		if !strings.Contains(out, want) {
			t.Errorf("lb list lacks %q:\n%s", want, out)
		}
	}
	js := mustJSON[api.DescribeLoadBalancersResponse](t, env, "lb", "list")
	if len(js.LoadBalancers) != 1 || js.LoadBalancers[0].State != api.LoadBalancerStateFailed || js.LoadBalancers[0].StateReason != why {
		t.Errorf("lb list -o json: %+v", js.LoadBalancers)
	}
	if _, err := run(t, env, "fault", "set", "--action", api.DataPlaneProgramLoadBalancer, "--error-rate", "1"); err != nil {
		t.Errorf("fault set on a data-plane operation: %v", err)
	}
	if out, err := run(t, env, "fault", "list"); err != nil || !strings.Contains(out, api.DataPlaneProgramLoadBalancer) {
		t.Errorf("fault list: %q, %v", out, err)
	}
}

// TestTargetGroupTLSFlags: tg create's --tls-* flags make the group's TlsVerification; the
// server names what is wrong with a bad one.
func TestTargetGroupTLSFlags(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	vpc := mustJSON[api.CreateVpcResponse](t, env, "vpc", "create", "--cidr", "10.0.0.0/16").Vpc
	caFile, _ := writeCert(t, "ca.example.com")
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	create := func(name string, flags ...string) []string {
		return append([]string{"tg", "create", name, "--vpc", vpc.VpcID, "--port", "8443", "--protocol", "HTTPS"}, flags...)
	}
	tg := mustJSON[api.CreateTargetGroupResponse](t, env, create("tls", "--tls-server-name", "web.example.com", "--tls-ca-file", caFile,
		"--tls-san", "Hostname=*.web.example.com", "--tls-san", "URI=spiffe://cluster.local/ns/web/sa/app")...).TargetGroup
	want := &api.TLSVerification{ServerName: "web.example.com", CACertificatesPEM: string(ca), SubjectAltNames: []api.SubjectAltName{
		{Type: api.SANTypeHostname, Value: "*.web.example.com"}, {Type: api.SANTypeURI, Value: "spiffe://cluster.local/ns/web/sa/app"}}}
	if diff := cmp.Diff(want, tg.TLSVerification); diff != "" {
		t.Errorf("tg create --tls-*: TlsVerification (-want +got):\n%s", diff)
	}
	sys := mustJSON[api.CreateTargetGroupResponse](t, env, create("sys", "--tls-server-name", "web.example.com", "--tls-system-roots")...).TargetGroup
	if v := sys.TLSVerification; v == nil || !v.UseSystemRoots || v.CACertificatesPEM != "" {
		t.Errorf("tg create --tls-system-roots: %+v", v)
	}
	if out, err := run(t, env, "tg", "list"); err != nil || !strings.Contains(out, "HTTPS (verifies web.example.com)") {
		t.Errorf("tg list printed %q, %v; want the verified groups' server name", out, err)
	}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--tls-ca-file", caFile}, "TlsVerification.ServerName is required"},
		{[]string{"--tls-server-name", "web.example.com", "--tls-ca-file", caFile, "--tls-system-roots"}, "tls-ca-file"},
		{[]string{"--tls-server-name", "web.example.com", "--tls-system-roots", "--tls-san", "DNS=a.example.com"}, "want Hostname=NAME or URI=URI"},
		{[]string{"--tls-server-name", "web.example.com", "--tls-ca-file", caFile + ".missing"}, "--tls-ca-file"},
	} {
		if out, err := run(t, env, create("bad", tc.flags...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("tg create %v: %q, %v; want an error saying %q", tc.flags, out, err, tc.want)
		}
	}
}

// TestTargetGroupClientCertificateFlag: tg create --client-certificate names the certificate
// the group presents to its targets (HTTPS and TLS groups); tg list shows it; the server
// refuses it on a group that is neither and an unknown certificate.
func TestTargetGroupClientCertificateFlag(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	vpc := mustJSON[api.CreateVpcResponse](t, env, "vpc", "create", "--cidr", "10.0.0.0/16").Vpc
	certFile, keyFile := writeCert(t, "lb.example.com")
	cert := mustJSON[api.ImportCertificateResponse](t, env, "cert", "import", "--cert", certFile, "--key", keyFile).Certificate
	create := func(name, protocol string, flags ...string) []string {
		return append([]string{"tg", "create", name, "--vpc", vpc.VpcID, "--port", "8443", "--protocol", protocol}, flags...)
	}
	tg := mustJSON[api.CreateTargetGroupResponse](t, env, create("mtls", "HTTPS", "--client-certificate", cert.CertificateID)...).TargetGroup
	if tg.ClientCertificateID != cert.CertificateID {
		t.Errorf("tg create --client-certificate %s: ClientCertificateId %q", cert.CertificateID, tg.ClientCertificateID)
	}
	// A TLS group takes it too (its health check a TLS handshake by default).
	db := mustJSON[api.CreateTargetGroupResponse](t, env, create("db", "TLS", "--client-certificate", cert.CertificateID)...).TargetGroup
	if db.Protocol != api.ProtocolTLS || db.ClientCertificateID != cert.CertificateID || db.HealthCheck.Protocol != api.ProtocolTLS {
		t.Errorf("tg create --protocol TLS --client-certificate %s: %+v", cert.CertificateID, db)
	}
	if out, err := run(t, env, "tg", "list"); err != nil || !strings.Contains(out, "HTTPS (presents "+cert.CertificateID+")") ||
		!strings.Contains(out, "TLS (presents "+cert.CertificateID+")") {
		t.Errorf("tg list printed %q, %v; want the groups' client certificate", out, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{create("plain", "HTTP", "--client-certificate", cert.CertificateID), "ClientCertificateId applies to HTTPS and TLS target groups only; Protocol is HTTP"},
		{create("unknown", "HTTPS", "--client-certificate", "cert-404"), `ClientCertificateId: certificate "cert-404" does not exist`},
	} {
		if out, err := run(t, env, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %q, %v; want an error saying %q", tc.args, out, err, tc.want)
		}
	}
}

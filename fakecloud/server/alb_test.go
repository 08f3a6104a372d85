package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// albFixture adds an application load balancer with an HTTP listener on port 80 forwarding to
// an HTTP target group, and an imported certificate.
type albFixture struct {
	*fixture
	lb       api.LoadBalancer
	tg       api.TargetGroup
	listener api.Listener
	cert     api.Certificate
}

func newALBFixture(t *testing.T, o servertest.Options) *albFixture {
	t.Helper()
	f := newFixture(t, o)
	ctx := context.Background()
	lb, err := f.Admin.CreateLoadBalancer(ctx, &api.CreateLoadBalancerRequest{Name: "gw", Type: api.LoadBalancerTypeApplication, SubnetID: f.subnet.SubnetID})
	if err != nil {
		t.Fatalf("CreateLoadBalancer: %v", err)
	}
	tg, err := f.Admin.CreateTargetGroup(ctx, &api.CreateTargetGroupRequest{Name: "web", Protocol: api.ProtocolHTTP, Port: 8080, VpcID: f.vpc.VpcID})
	if err != nil {
		t.Fatalf("CreateTargetGroup: %v", err)
	}
	l, err := f.Admin.CreateListener(ctx, &api.CreateListenerRequest{LoadBalancerID: lb.LoadBalancer.LoadBalancerID, Protocol: api.ProtocolHTTP, Port: 80,
		DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: tg.TargetGroup.TargetGroupID}}})
	if err != nil {
		t.Fatalf("CreateListener: %v", err)
	}
	certPEM, keyPEM := selfSigned(t, "www.example.com")
	c, err := f.Admin.ImportCertificate(ctx, &api.ImportCertificateRequest{Certificate: certPEM, PrivateKey: keyPEM})
	if err != nil {
		t.Fatalf("ImportCertificate: %v", err)
	}
	return &albFixture{fixture: f, lb: lb.LoadBalancer, tg: tg.TargetGroup, listener: l.Listener, cert: c.Certificate}
}

func selfSigned(t testing.TB, name string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// The application load balancer's actions over the wire: a whole round, and refusals that
// name the field, answer ELBv2's codes and change nothing.
func TestApplicationLoadBalancerOverTheAPI(t *testing.T) {
	f := newALBFixture(t, servertest.Options{})
	ctx := context.Background()
	lid, tg, cert := f.listener.ListenerID, f.tg.TargetGroupID, f.cert.CertificateID
	r, err := f.Admin.CreateRule(ctx, &api.CreateRuleRequest{ListenerID: lid, Priority: 10,
		Conditions: []api.RuleCondition{{Field: api.ConditionPathPattern, PathPatternConfig: &api.PathPatternConditionConfig{Values: []string{"/api"}, MatchType: api.MatchTypePrefix}}},
		Actions:    []api.Action{{Type: api.ActionTypeForward, TargetGroupID: tg, URLRewriteConfig: &api.URLRewriteConfig{PathModification: &api.PathModification{Type: api.PathReplacePrefixMatch, Value: "/"}}}}})
	if err != nil {
		t.Fatalf("CreateRule: %v", err)
	}
	rules, err := f.Admin.DescribeRules(ctx, &api.DescribeRulesRequest{ListenerID: lid})
	if err != nil || len(rules.Rules) != 2 || rules.Rules[0].RuleID != r.Rule.RuleID || !rules.Rules[1].IsDefault {
		t.Fatalf("DescribeRules: %+v, %v", rules, err)
	}
	if _, err := f.Admin.SetRulePriorities(ctx, &api.SetRulePrioritiesRequest{RulePriorities: []api.RulePriorityPair{{RuleID: r.Rule.RuleID, Priority: 5}}}); err != nil {
		t.Fatalf("SetRulePriorities: %v", err)
	}
	https, err := f.Admin.CreateListener(ctx, &api.CreateListenerRequest{LoadBalancerID: f.lb.LoadBalancerID, Protocol: api.ProtocolHTTPS, Port: 443,
		DefaultActions: []api.Action{{Type: api.ActionTypeFixedResponse, FixedResponseConfig: &api.FixedResponseActionConfig{StatusCode: "404"}}},
		Certificates:   []api.ListenerCertificate{{CertificateID: cert}}})
	if err != nil {
		t.Fatalf("CreateListener HTTPS: %v", err)
	}
	d, err := f.Admin.DescribeCertificates(ctx, &api.DescribeCertificatesRequest{})
	if err != nil || len(d.Certificates) != 1 || d.Certificates[0].InUseBy[0] != https.Listener.ListenerID {
		t.Fatalf("DescribeCertificates: %+v, %v", d, err)
	}
	a := post(t, f.URL, servertest.AdminToken, api.ActionDescribeCertificates, []byte(`{}`))
	if strings.Contains(string(a.body), "PRIVATE KEY") {
		t.Error("DescribeCertificates answers a private key")
	}
	if _, err := f.Admin.ModifyRule(ctx, &api.ModifyRuleRequest{RuleID: r.Rule.RuleID, Actions: []api.Action{{Type: api.ActionTypeFixedResponse,
		FixedResponseConfig: &api.FixedResponseActionConfig{StatusCode: "503"}}}}); err != nil {
		t.Fatalf("ModifyRule: %v", err)
	}
	if _, err := f.Admin.DeleteRule(ctx, &api.DeleteRuleRequest{RuleID: r.Rule.RuleID}); err != nil {
		t.Fatalf("DeleteRule: %v", err)
	}
	if _, err := f.Admin.DeleteCertificate(ctx, &api.DeleteCertificateRequest{CertificateID: cert}); !errors.Is(err, api.ErrResourceInUse) {
		t.Errorf("DeleteCertificate in use: %v, want ResourceInUse", err)
	}
	if _, err := f.Admin.ModifyListener(ctx, &api.ModifyListenerRequest{ListenerID: https.Listener.ListenerID, SSLPolicy: api.SSLPolicyTLS13Only}); err != nil {
		t.Errorf("ModifyListener: %v", err)
	}

	fixed := `"Actions": [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}]`
	exact := `"Conditions": [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/x"]}}]`
	tests := []struct {
		name, action, body string
		status             int
		code, mentions     string
	}{
		{"rule regex", api.ActionCreateRule, `{"ListenerId": "` + lid + `", "Priority": 1, "Conditions": [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/a("], "MatchType": "Regex"}}], ` + fixed + `}`, 400, api.CodeValidationError, "Conditions[0].PathPatternConfig.Values[0]"},
		{"rule weight", api.ActionCreateRule, `{"ListenerId": "` + lid + `", "Priority": 1, ` + exact + `, "Actions": [{"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupId": "` + tg + `", "Weight": 1000}]}}]}`, 400, api.CodeValidationError, "Weight"},
		{"rule priority", api.ActionCreateRule, `{"ListenerId": "` + lid + `", "Priority": 50001, ` + exact + `, ` + fixed + `}`, 400, api.CodeValidationError, "Priority"},
		{"rule unknown listener", api.ActionCreateRule, `{"ListenerId": "listener-nope", "Priority": 1, ` + exact + `, ` + fixed + `}`, 400, api.CodeListenerNotFound, "listener-nope"},
		{"rule unknown group", api.ActionCreateRule, `{"ListenerId": "` + lid + `", "Priority": 1, ` + exact + `, "Actions": [{"Type": "forward", "TargetGroupId": "tg-nope"}]}`, 400, api.CodeTargetGroupNotFound, "tg-nope"},
		{"modify unknown rule", api.ActionModifyRule, `{"RuleId": "rule-nope", ` + fixed + `}`, 400, api.CodeRuleNotFound, "rule-nope"},
		{"priorities twice", api.ActionSetRulePriorities, `{"RulePriorities": [{"RuleId": "a", "Priority": 1}, {"RuleId": "a", "Priority": 2}]}`, 400, api.CodeValidationError, "RulePriorities[1].RuleId"},
		{"https without certificate", api.ActionCreateListener, `{"LoadBalancerId": "` + f.lb.LoadBalancerID + `", "Protocol": "HTTPS", "Port": 8443, "DefaultActions": [{"Type": "forward", "TargetGroupId": "` + tg + `"}]}`, 400, api.CodeValidationError, "Certificates"},
		{"alb tcp listener to an http group", api.ActionCreateListener, `{"LoadBalancerId": "` + f.lb.LoadBalancerID + `", "Protocol": "TCP", "Port": 81, "DefaultActions": [{"Type": "forward", "TargetGroupId": "` + tg + `"}]}`, 400, api.CodeIncompatibleProtocols, "TCP target groups"},
		{"alb udp listener to an http group", api.ActionCreateListener, `{"LoadBalancerId": "` + f.lb.LoadBalancerID + `", "Protocol": "UDP", "Port": 82, "DefaultActions": [{"Type": "forward", "TargetGroupId": "` + tg + `"}]}`, 400, api.CodeIncompatibleProtocols, "UDP target groups"},
		{"alb sctp listener", api.ActionCreateListener, `{"LoadBalancerId": "` + f.lb.LoadBalancerID + `", "Protocol": "SCTP", "Port": 82, "DefaultActions": [{"Type": "forward", "TargetGroupId": "` + tg + `"}]}`, 400, api.CodeValidationError, "Protocol"},
		{"ssl policy", api.ActionModifyListener, `{"ListenerId": "` + https.Listener.ListenerID + `", "SslPolicy": "nope"}`, 400, api.CodeSSLPolicyNotFound, "SslPolicy"},
		{"certificate garbage", api.ActionImportCertificate, `{"Certificate": "x", "PrivateKey": "y"}`, 400, api.CodeValidationError, "Certificate"},
		{"certificate unknown", api.ActionDescribeCertificates, `{"CertificateIds": ["cert-nope"]}`, 400, api.CodeCertificateNotFound, "cert-nope"},
		{"remove default certificate", api.ActionRemoveListenerCertificates, `{"ListenerId": "` + https.Listener.ListenerID + `", "Certificates": [{"CertificateId": "` + cert + `"}]}`, 400, api.CodeOperationNotPermitted, cert},
		{"grpc matcher", api.ActionCreateTargetGroup, `{"Name": "g", "Protocol": "HTTP", "ProtocolVersion": "GRPC", "Port": 50051, "VpcId": "` + f.vpc.VpcID + `", "HealthCheck": {"Matcher": "200"}}`, 400, api.CodeValidationError, "HealthCheck.Matcher"},
		{"protocol version on tcp", api.ActionCreateTargetGroup, `{"Name": "g", "Protocol": "TCP", "ProtocolVersion": "HTTP2", "Port": 1, "VpcId": "` + f.vpc.VpcID + `"}`, 400, api.CodeValidationError, "ProtocolVersion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.snapshot(t)
			a := post(t, f.URL, servertest.AdminToken, tt.action, []byte(tt.body))
			if a.status != tt.status {
				t.Errorf("status %d, want %d; body %s", a.status, tt.status, a.body)
			}
			e := a.errorOf(t)
			if e.Code != tt.code {
				t.Errorf("code %q, want %q; message %q", e.Code, tt.code, e.Message)
			}
			if !strings.Contains(e.Message, tt.mentions) {
				t.Errorf("message %q does not mention %q", e.Message, tt.mentions)
			}
			mustUnchanged(t, before, f.snapshot(t))
		})
	}
}

func TestApplicationLoadBalancerActionsAreThrottledFaultedAndAdminOnly(t *testing.T) {
	f := newALBFixture(t, servertest.Options{Throttle: &server.ThrottleConfig{
		Overrides: map[string]server.ThrottleLimit{api.ActionCreateRule: {Burst: 1, Rate: 0.001}},
	}})
	ctx := context.Background()
	req := &api.CreateRuleRequest{ListenerID: f.listener.ListenerID, Priority: 1,
		Conditions: []api.RuleCondition{{Field: api.ConditionHostHeader, HostHeaderConfig: &api.HostHeaderConditionConfig{Values: []string{"a.example.com"}}}},
		Actions:    []api.Action{{Type: api.ActionTypeForward, TargetGroupID: f.tg.TargetGroupID}}}
	if _, err := f.Admin.CreateRule(ctx, req); err != nil {
		t.Fatal(err)
	}
	req.Priority = 2
	if _, err := f.Admin.CreateRule(ctx, req); !errors.Is(err, api.ErrRequestLimitExceeded) {
		t.Errorf("CreateRule past its bucket: %v, want RequestLimitExceeded", err)
	}
	if _, err := f.Admin.SetFault(ctx, &api.SetFaultRequest{Fault: api.Fault{Action: api.ActionDescribeRules, ErrorRate: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Admin.DescribeRules(ctx, &api.DescribeRulesRequest{ListenerID: f.listener.ListenerID}); !errors.Is(err, api.ErrInternalError) {
		t.Errorf("DescribeRules under a 100%% fault: %v, want InternalError", err)
	}
	inst := f.Client(f.instances[0].Token)
	if _, err := inst.DescribeCertificates(ctx, &api.DescribeCertificatesRequest{}); !errors.Is(err, api.ErrUnauthorizedOperation) {
		t.Errorf("an instance token described certificates: %v", err)
	}
}

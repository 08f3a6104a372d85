package awsapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

var (
	albARN      = regexp.MustCompile(`^arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/alb/[0-9a-f]{17}$`)
	albListener = regexp.MustCompile(`^arn:aws:elasticloadbalancing:us-east-1:000000000000:listener/app/alb/[0-9a-f]{17}/[0-9a-f]{17}$`)
	albRule     = regexp.MustCompile(`^arn:aws:elasticloadbalancing:us-east-1:000000000000:listener-rule/app/alb/[0-9a-f]{17}/[0-9a-f]{17}/([0-9a-f]{17}|default)$`)
)

// alb is an application load balancer made through the SDK, with two HTTP target groups and
// an HTTP listener whose default action is a fixed response.
type alb struct {
	w             *world
	c             *elb.Client
	lb, listener  string
	blue, green   string
	grpc          string
	defaultAction types.Action
}

func newALB(t *testing.T) *alb {
	t.Helper()
	w := newWorld(t, servertest.Options{}, "m5.large", 1)
	ctx := context.Background()
	a := &alb{w: w, c: w.elb(servertest.AWSKey, elbNoRetry)}
	tg := func(name string, version string, m *types.Matcher) string {
		g := must(a.c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{
			Name: aws.String(name), Protocol: types.ProtocolEnumHttp, ProtocolVersion: aws.String(version), Port: aws.Int32(8080),
			VpcId: aws.String(w.subnet.VpcID), TargetType: types.TargetTypeEnumIp, HealthCheckPath: aws.String("/ready"), Matcher: m,
		})).of(t).TargetGroups[0]
		if g.Protocol != types.ProtocolEnumHttp || aws.ToString(g.ProtocolVersion) != version || aws.ToString(g.HealthCheckPath) != "/ready" || g.Matcher == nil {
			t.Fatalf("target group %+v", g)
		}
		return aws.ToString(g.TargetGroupArn)
	}
	a.blue = tg("blue", "HTTP1", &types.Matcher{HttpCode: aws.String("200-299")})
	a.green = tg("green", "HTTP2", nil)
	a.grpc = tg("grpc", "GRPC", &types.Matcher{GrpcCode: aws.String("0-12")})
	g := must(a.c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: []string{a.grpc}})).of(t).TargetGroups[0]
	if aws.ToString(g.Matcher.GrpcCode) != "0-12" || g.Matcher.HttpCode != nil {
		t.Fatalf("gRPC group's matcher %+v", g.Matcher)
	}

	lb := must(a.c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("alb"), Subnets: []string{w.subnet.SubnetID}})).of(t).LoadBalancers[0]
	a.lb = aws.ToString(lb.LoadBalancerArn)
	if !albARN.MatchString(a.lb) || lb.Type != types.LoadBalancerTypeEnumApplication {
		t.Fatalf("load balancer %s of type %s; want an application one (ELBv2's default)", a.lb, lb.Type)
	}
	a.defaultAction = types.Action{Type: types.ActionTypeEnumFixedResponse, FixedResponseConfig: &types.FixedResponseActionConfig{
		StatusCode: aws.String("404"), ContentType: aws.String("text/plain"), MessageBody: aws.String("no route"),
	}}
	l := must(a.c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: aws.String(a.lb), Protocol: types.ProtocolEnumHttp, Port: aws.Int32(80),
		DefaultActions: []types.Action{a.defaultAction}})).of(t).Listeners[0]
	a.listener = aws.ToString(l.ListenerArn)
	if !albListener.MatchString(a.listener) || aws.ToString(l.LoadBalancerArn) != a.lb || l.Protocol != types.ProtocolEnumHttp ||
		len(l.DefaultActions) != 1 || aws.ToString(l.DefaultActions[0].FixedResponseConfig.MessageBody) != "no route" {
		t.Fatalf("listener %+v", l)
	}
	return a
}

func forwardTo(arn string) []types.Action {
	return []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: aws.String(arn)}}
}

func (a *alb) rule(t *testing.T, prio int32, conds []types.RuleCondition, acts []types.Action) types.Rule {
	t.Helper()
	out := must(a.c.CreateRule(context.Background(), &elb.CreateRuleInput{ListenerArn: aws.String(a.listener), Priority: aws.Int32(prio), Conditions: conds, Actions: acts})).of(t)
	return out.Rules[0]
}

// summary is a rule as the test compares it: its priority and ELBv2's view of its conditions
// and first action.
type summary struct {
	Priority   string
	Default    bool
	Conditions []string
	Action     string
}

func summarize(r types.Rule) summary {
	s := summary{Priority: aws.ToString(r.Priority), Default: aws.ToBool(r.IsDefault)}
	for _, c := range r.Conditions {
		f := aws.ToString(c.Field) + ":"
		switch {
		case c.HostHeaderConfig != nil:
			f += strings.Join(c.HostHeaderConfig.Values, ",")
		case c.PathPatternConfig != nil:
			f += strings.Join(c.PathPatternConfig.Values, ",") + " legacy " + strings.Join(c.Values, ",")
		case c.HttpHeaderConfig != nil:
			f += aws.ToString(c.HttpHeaderConfig.HttpHeaderName) + "=" + strings.Join(c.HttpHeaderConfig.Values, ",")
		case c.QueryStringConfig != nil:
			for _, kv := range c.QueryStringConfig.Values {
				f += aws.ToString(kv.Key) + "=" + aws.ToString(kv.Value) + ";"
			}
		case c.HttpRequestMethodConfig != nil:
			f += strings.Join(c.HttpRequestMethodConfig.Values, ",")
		}
		s.Conditions = append(s.Conditions, f)
	}
	if len(r.Actions) > 0 {
		act := r.Actions[0]
		s.Action = string(act.Type)
		switch {
		case act.ForwardConfig != nil:
			for _, g := range act.ForwardConfig.TargetGroups {
				name := strings.Split(aws.ToString(g.TargetGroupArn), "/")[1]
				s.Action += " " + name + "=" + itoa(aws.ToInt32(g.Weight))
			}
		case act.RedirectConfig != nil:
			rc := act.RedirectConfig
			s.Action += " " + strings.Join([]string{aws.ToString(rc.Protocol), aws.ToString(rc.Host), aws.ToString(rc.Port), aws.ToString(rc.Path), aws.ToString(rc.Query), string(rc.StatusCode)}, " ")
		case act.FixedResponseConfig != nil:
			s.Action += " " + aws.ToString(act.FixedResponseConfig.StatusCode)
		}
	}
	return s
}

func itoa(n int32) string { return big.NewInt(int64(n)).String() }

// TestELBv2Rules: rules of every condition type and action type through the SDK, their
// priorities swapped, modified and deleted, read back in ELBv2's shapes.
func TestELBv2Rules(t *testing.T) {
	a := newALB(t)
	ctx := context.Background()
	host := a.rule(t, 10, []types.RuleCondition{{Field: aws.String("host-header"), HostHeaderConfig: &types.HostHeaderConditionConfig{Values: []string{"*.example.com"}}}}, forwardTo(a.blue))
	if !albRule.MatchString(aws.ToString(host.RuleArn)) || aws.ToString(host.Priority) != "10" || aws.ToBool(host.IsDefault) {
		t.Fatalf("rule %+v", host)
	}
	// The legacy Values, and ELBv2's wildcards.
	path := a.rule(t, 20, []types.RuleCondition{{Field: aws.String("path-pattern"), Values: []string{"/api/*", "/v?/x.json"}}},
		[]types.Action{{Type: types.ActionTypeEnumForward, ForwardConfig: &types.ForwardActionConfig{TargetGroups: []types.TargetGroupTuple{
			{TargetGroupArn: aws.String(a.blue), Weight: aws.Int32(80)}, {TargetGroupArn: aws.String(a.green), Weight: aws.Int32(20)},
		}}}})
	a.rule(t, 30, []types.RuleCondition{{Field: aws.String("http-header"), HttpHeaderConfig: &types.HttpHeaderConditionConfig{HttpHeaderName: aws.String("X-Env"), Values: []string{"canary"}}}}, forwardTo(a.green))
	a.rule(t, 40, []types.RuleCondition{{Field: aws.String("query-string"), QueryStringConfig: &types.QueryStringConditionConfig{Values: []types.QueryStringKeyValuePair{{Key: aws.String("v"), Value: aws.String("2*")}}}}},
		[]types.Action{{Type: types.ActionTypeEnumRedirect, RedirectConfig: &types.RedirectActionConfig{Protocol: aws.String("HTTPS"), Port: aws.String("443"), StatusCode: types.RedirectActionStatusCodeEnumHttp301}}})
	method := a.rule(t, 50, []types.RuleCondition{{Field: aws.String("http-request-method"), HttpRequestMethodConfig: &types.HttpRequestMethodConditionConfig{Values: []string{"DELETE"}}}},
		[]types.Action{{Type: types.ActionTypeEnumFixedResponse, FixedResponseConfig: &types.FixedResponseActionConfig{StatusCode: aws.String("403")}}})

	// What fakecloud holds: the wildcards as a regex.
	jr := must(a.w.Admin.DescribeRules(ctx, &api.DescribeRulesRequest{RuleIDs: []string{"rule-" + lastSegment(aws.ToString(path.RuleArn))}})).of(t).Rules[0]
	if pp := jr.Conditions[0].PathPatternConfig; pp.MatchType != api.MatchTypeRegex || !cmp.Equal(pp.Values, []string{`/api/.*`, `/v./x\.json`}) {
		t.Fatalf("path pattern in fakecloud: %+v", pp)
	}

	describe := func() []summary {
		t.Helper()
		var out []summary
		for _, r := range must(a.c.DescribeRules(ctx, &elb.DescribeRulesInput{ListenerArn: aws.String(a.listener)})).of(t).Rules {
			if !albRule.MatchString(aws.ToString(r.RuleArn)) {
				t.Fatalf("rule ARN %s", aws.ToString(r.RuleArn))
			}
			out = append(out, summarize(r))
		}
		return out
	}
	want := []summary{
		{Priority: "10", Conditions: []string{"host-header:*.example.com"}, Action: "forward blue=1"},
		{Priority: "20", Conditions: []string{"path-pattern:/api/*,/v?/x.json legacy /api/*,/v?/x.json"}, Action: "forward blue=80 green=20"},
		{Priority: "30", Conditions: []string{"http-header:X-Env=canary"}, Action: "forward green=1"},
		{Priority: "40", Conditions: []string{"query-string:v=2*;"}, Action: "redirect HTTPS #{host} 443 /#{path} #{query} HTTP_301"},
		{Priority: "50", Conditions: []string{"http-request-method:DELETE"}, Action: "fixed-response 403"},
		{Priority: "default", Default: true, Action: "fixed-response 404"},
	}
	if d := cmp.Diff(want, describe()); d != "" {
		t.Fatalf("DescribeRules (-want +got):\n%s", d)
	}

	// Swap two priorities at once, change a rule, delete one.
	swapped := must(a.c.SetRulePriorities(ctx, &elb.SetRulePrioritiesInput{RulePriorities: []types.RulePriorityPair{
		{RuleArn: host.RuleArn, Priority: aws.Int32(50)}, {RuleArn: method.RuleArn, Priority: aws.Int32(10)},
	}})).of(t).Rules
	if len(swapped) != 2 {
		t.Fatalf("SetRulePriorities answered %d rules", len(swapped))
	}
	must(a.c.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: path.RuleArn, Actions: forwardTo(a.green)})).of(t)
	must(a.c.DeleteRule(ctx, &elb.DeleteRuleInput{RuleArn: method.RuleArn})).of(t)
	want = []summary{
		{Priority: "20", Conditions: []string{"path-pattern:/api/*,/v?/x.json legacy /api/*,/v?/x.json"}, Action: "forward green=1"},
		want[2], want[3],
		{Priority: "50", Conditions: []string{"host-header:*.example.com"}, Action: "forward blue=1"},
		want[5],
	}
	if d := cmp.Diff(want, describe()); d != "" {
		t.Fatalf("DescribeRules after the changes (-want +got):\n%s", d)
	}

	// The default rule by its ARN, and pages.
	rules := must(a.c.DescribeRules(ctx, &elb.DescribeRulesInput{ListenerArn: aws.String(a.listener), PageSize: aws.Int32(3)})).of(t)
	if len(rules.Rules) != 3 || rules.NextMarker == nil {
		t.Fatalf("first page: %d rules, marker %v", len(rules.Rules), rules.NextMarker)
	}
	rest := must(a.c.DescribeRules(ctx, &elb.DescribeRulesInput{ListenerArn: aws.String(a.listener), Marker: rules.NextMarker})).of(t).Rules
	def := rest[len(rest)-1]
	if len(rest) != 2 || !strings.HasSuffix(aws.ToString(def.RuleArn), "/default") {
		t.Fatalf("second page %+v", rest)
	}
	byARN := must(a.c.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{aws.ToString(def.RuleArn)}})).of(t).Rules
	if len(byARN) != 1 || !cmp.Equal(summarize(byARN[0]), summarize(def)) {
		t.Fatalf("default rule by its ARN: %+v", byARN)
	}
	_, err := a.c.DeleteRule(ctx, &elb.DeleteRuleInput{RuleArn: def.RuleArn})
	wantAPIError(t, err, api.CodeOperationNotPermitted, 400)
}

func lastSegment(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// TestELBv2RuleErrors: bad rules are refused with ELBv2's codes, the message naming the field.
func TestELBv2RuleErrors(t *testing.T) {
	a := newALB(t)
	ctx := context.Background()
	hostIs := func(h string) []types.RuleCondition {
		return []types.RuleCondition{{Field: aws.String("host-header"), HostHeaderConfig: &types.HostHeaderConditionConfig{Values: []string{h}}}}
	}
	a.rule(t, 5, hostIs("a.example.com"), forwardTo(a.blue))
	missingRule := strings.Replace(a.listener, ":listener/app/", ":listener-rule/app/", 1) + "/00000000000000000"
	for _, tc := range []struct {
		name, code, field string
		in                *elb.CreateRuleInput
	}{
		{"priority in use", api.CodePriorityInUse, "5", &elb.CreateRuleInput{Priority: aws.Int32(5), Conditions: hostIs("b.example.com"), Actions: forwardTo(a.blue)}},
		{"priority out of range", api.CodeValidationError, "Priority", &elb.CreateRuleInput{Priority: aws.Int32(50001), Conditions: hostIs("b.example.com"), Actions: forwardTo(a.blue)}},
		{"unknown field", api.CodeValidationError, "Conditions.member.1.Field", &elb.CreateRuleInput{Priority: aws.Int32(6), Conditions: []types.RuleCondition{{Field: aws.String("source-ip"), SourceIpConfig: &types.SourceIpConditionConfig{Values: []string{"10.0.0.0/8"}}}}, Actions: forwardTo(a.blue)}},
		{"header without a name", api.CodeValidationError, "HttpHeaderConfig.HttpHeaderName", &elb.CreateRuleInput{Priority: aws.Int32(6), Conditions: []types.RuleCondition{{Field: aws.String("http-header"), HttpHeaderConfig: &types.HttpHeaderConditionConfig{Values: []string{"x"}}}}, Actions: forwardTo(a.blue)}},
		{"authenticate action", api.CodeValidationError, "Actions.member.1.Type", &elb.CreateRuleInput{Priority: aws.Int32(6), Conditions: hostIs("b.example.com"), Actions: []types.Action{{Type: types.ActionTypeEnumAuthenticateOidc}}}},
		{"redirect port", api.CodeValidationError, "RedirectConfig.Port", &elb.CreateRuleInput{Priority: aws.Int32(6), Conditions: hostIs("b.example.com"), Actions: []types.Action{{Type: types.ActionTypeEnumRedirect, RedirectConfig: &types.RedirectActionConfig{Port: aws.String("http"), StatusCode: types.RedirectActionStatusCodeEnumHttp302}}}}},
		{"unknown target group", api.CodeTargetGroupNotFound, "tg-", &elb.CreateRuleInput{Priority: aws.Int32(6), Conditions: hostIs("b.example.com"), Actions: forwardTo("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/x/00000000000000000")}},
		{"stickiness", api.CodeValidationError, "TargetGroupStickinessConfig", &elb.CreateRuleInput{Priority: aws.Int32(6), Conditions: hostIs("b.example.com"), Actions: []types.Action{{Type: types.ActionTypeEnumForward, ForwardConfig: &types.ForwardActionConfig{
			TargetGroups: []types.TargetGroupTuple{{TargetGroupArn: aws.String(a.blue)}}, TargetGroupStickinessConfig: &types.TargetGroupStickinessConfig{Enabled: aws.Bool(true)}}}}}},
		{"rule tags", api.CodeValidationError, "rule tags", &elb.CreateRuleInput{Priority: aws.Int32(6), Conditions: hostIs("b.example.com"), Actions: forwardTo(a.blue), Tags: []types.Tag{{Key: aws.String("k")}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := *tc.in
			in.ListenerArn = aws.String(a.listener)
			_, err := a.c.CreateRule(ctx, &in)
			wantAPIErrorNaming(t, err, tc.code, tc.field)
		})
	}
	_, err := a.c.DeleteRule(ctx, &elb.DeleteRuleInput{RuleArn: aws.String(missingRule)})
	wantAPIErrorNaming(t, err, api.CodeRuleNotFound, "rule-00000000000000000")
	_, err = a.c.DescribeRules(ctx, &elb.DescribeRulesInput{ListenerArn: aws.String(strings.Replace(a.listener, lastSegment(a.listener), "00000000000000000", 1))})
	wantAPIErrorNaming(t, err, api.CodeListenerNotFound, "listener-00000000000000000")
	_, err = a.c.DescribeRules(ctx, &elb.DescribeRulesInput{})
	wantAPIErrorNaming(t, err, api.CodeValidationError, "ListenerArn")
	_, err = a.c.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: aws.String(a.listener)})
	wantAPIErrorNaming(t, err, api.CodeValidationError, "rule ARN")
}

// wantAPIErrorNaming checks the code and that the message names what was wrong.
func wantAPIErrorNaming(t *testing.T, err error, code, field string) {
	t.Helper()
	wantAPIError(t, err, code, 400)
	if !strings.Contains(err.Error(), field) {
		t.Fatalf("error %v does not name %s", err, field)
	}
}

// TestELBv2HTTPSListener: an HTTPS listener serving a certificate imported through fakecloud's
// own API, named by its ACM-shaped ARN; more certificates added, listed and removed; the
// listener modified.
func TestELBv2HTTPSListener(t *testing.T) {
	a := newALB(t)
	ctx := context.Background()
	cert := func(name string) string {
		certPEM, keyPEM := selfSignedPEM(t, name)
		c := must(a.w.Admin.ImportCertificate(ctx, &api.ImportCertificateRequest{Certificate: certPEM, PrivateKey: keyPEM})).of(t).Certificate
		return "arn:aws:acm:us-east-1:000000000000:certificate/" + c.CertificateID
	}
	www, api2 := cert("www.example.com"), cert("api.example.com")
	l := must(a.c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: aws.String(a.lb), Protocol: types.ProtocolEnumHttps, Port: aws.Int32(443),
		SslPolicy: aws.String(api.SSLPolicyTLS12), Certificates: []types.Certificate{{CertificateArn: aws.String(www)}}, DefaultActions: forwardTo(a.blue)})).of(t).Listeners[0]
	if l.Protocol != types.ProtocolEnumHttps || aws.ToString(l.SslPolicy) != api.SSLPolicyTLS12 || len(l.Certificates) != 1 || aws.ToString(l.Certificates[0].CertificateArn) != www ||
		aws.ToString(l.DefaultActions[0].TargetGroupArn) != a.blue {
		t.Fatalf("HTTPS listener %+v", l)
	}
	// ELBv2 application load balancers have no TLS-passthrough or TCP listeners.
	for _, p := range []types.ProtocolEnum{types.ProtocolEnumTls, types.ProtocolEnumTcp} {
		_, err := a.c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: aws.String(a.lb), Protocol: p, Port: aws.Int32(8443), DefaultActions: forwardTo(a.blue)})
		if err == nil || !strings.Contains(err.Error(), "HTTP and HTTPS listeners only") {
			t.Errorf("%s listener on an application load balancer: got %v", p, err)
		}
	}
	must(a.c.AddListenerCertificates(ctx, &elb.AddListenerCertificatesInput{ListenerArn: l.ListenerArn, Certificates: []types.Certificate{{CertificateArn: aws.String(api2)}}})).of(t)
	certs := func() map[string]bool {
		out := map[string]bool{}
		for _, c := range must(a.c.DescribeListenerCertificates(ctx, &elb.DescribeListenerCertificatesInput{ListenerArn: l.ListenerArn})).of(t).Certificates {
			out[aws.ToString(c.CertificateArn)] = aws.ToBool(c.IsDefault)
		}
		return out
	}
	if d := cmp.Diff(map[string]bool{www: true, api2: false}, certs()); d != "" {
		t.Fatalf("listener certificates (-want +got):\n%s", d)
	}
	must(a.c.RemoveListenerCertificates(ctx, &elb.RemoveListenerCertificatesInput{ListenerArn: l.ListenerArn, Certificates: []types.Certificate{{CertificateArn: aws.String(api2)}}})).of(t)
	if d := cmp.Diff(map[string]bool{www: true}, certs()); d != "" {
		t.Fatalf("listener certificates after the removal (-want +got):\n%s", d)
	}

	m := must(a.c.ModifyListener(ctx, &elb.ModifyListenerInput{ListenerArn: l.ListenerArn, Port: aws.Int32(8443),
		DefaultActions: []types.Action{{Type: types.ActionTypeEnumRedirect, RedirectConfig: &types.RedirectActionConfig{Host: aws.String("example.com"), StatusCode: types.RedirectActionStatusCodeEnumHttp302}}}})).of(t).Listeners[0]
	if aws.ToInt32(m.Port) != 8443 || m.Protocol != types.ProtocolEnumHttps || aws.ToString(m.DefaultActions[0].RedirectConfig.Host) != "example.com" || aws.ToString(m.Certificates[0].CertificateArn) != www {
		t.Fatalf("modified listener %+v", m)
	}
	listed := must(a.c.DescribeListeners(ctx, &elb.DescribeListenersInput{LoadBalancerArn: aws.String(a.lb)})).of(t).Listeners
	if len(listed) != 2 {
		t.Fatalf("%d listeners", len(listed))
	}

	missing := "arn:aws:acm:us-east-1:000000000000:certificate/cert-00000000000000000"
	_, err := a.c.AddListenerCertificates(ctx, &elb.AddListenerCertificatesInput{ListenerArn: l.ListenerArn, Certificates: []types.Certificate{{CertificateArn: aws.String(missing)}}})
	wantAPIErrorNaming(t, err, api.CodeCertificateNotFound, "cert-00000000000000000")
	_, err = a.c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: aws.String(a.lb), Protocol: types.ProtocolEnumHttps, Port: aws.Int32(444),
		Certificates: []types.Certificate{{CertificateArn: aws.String("arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012")}}, DefaultActions: forwardTo(a.blue)})
	wantAPIErrorNaming(t, err, api.CodeValidationError, "Certificates.member.1.CertificateArn")
	_, err = a.c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: aws.String(a.lb), Protocol: types.ProtocolEnumHttps, Port: aws.Int32(445),
		SslPolicy: aws.String("ELBSecurityPolicy-Bogus"), Certificates: []types.Certificate{{CertificateArn: aws.String(www)}}, DefaultActions: forwardTo(a.blue)})
	wantAPIErrorNaming(t, err, api.CodeSSLPolicyNotFound, "ELBSecurityPolicy-Bogus")
}

func selfSignedPEM(t *testing.T, name string) (string, string) {
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

// rewrite is a transform's one rewrite as the SDK spells it.
func rewrite(re, repl string) []types.RewriteConfig {
	return []types.RewriteConfig{{Regex: aws.String(re), Replace: aws.String(repl)}}
}

// transformsOf summarizes a rule's transforms: "type regex -> replace" each.
func transformsOf(r types.Rule) []string {
	var out []string
	for _, tr := range r.Transforms {
		var rs []types.RewriteConfig
		switch {
		case tr.HostHeaderRewriteConfig != nil:
			rs = tr.HostHeaderRewriteConfig.Rewrites
		case tr.UrlRewriteConfig != nil:
			rs = tr.UrlRewriteConfig.Rewrites
		}
		s := string(tr.Type)
		for _, rw := range rs {
			s += " " + aws.ToString(rw.Regex) + " -> " + aws.ToString(rw.Replace)
		}
		out = append(out, s)
	}
	return out
}

// TestELBv2RuleTransforms: a rule with both of ELBv2's transforms through the SDK, held by
// fakecloud in its own shape, answered and described back in ELBv2's; replaced and reset by
// ModifyRule; bad shapes refused naming the field.
func TestELBv2RuleTransforms(t *testing.T) {
	a := newALB(t)
	ctx := context.Background()
	both := []types.RuleTransform{
		{Type: types.TransformTypeEnumHostHeaderRewrite, HostHeaderRewriteConfig: &types.HostHeaderRewriteConfig{Rewrites: rewrite("^.*$", "backend.internal")}},
		{Type: types.TransformTypeEnumUrlRewrite, UrlRewriteConfig: &types.UrlRewriteConfig{Rewrites: rewrite(`^/api/?`, "/")}},
	}
	prefix := []types.RuleCondition{{Field: aws.String("path-pattern"), PathPatternConfig: &types.PathPatternConditionConfig{RegexValues: []string{`^/api(/.*)?$`}}}}
	host := func(c *types.HostHeaderRewriteConfig) types.RuleTransform {
		return types.RuleTransform{Type: types.TransformTypeEnumHostHeaderRewrite, HostHeaderRewriteConfig: c}
	}
	for _, tc := range []struct {
		name, field string
		ts          []types.RuleTransform
	}{
		{"unknown type", "Transforms.member.1.Type", []types.RuleTransform{{Type: "header-rewrite", HostHeaderRewriteConfig: &types.HostHeaderRewriteConfig{Rewrites: rewrite("a", "b")}}}},
		{"the other type's config", "Transforms.member.1.UrlRewriteConfig", []types.RuleTransform{{Type: types.TransformTypeEnumHostHeaderRewrite, UrlRewriteConfig: &types.UrlRewriteConfig{Rewrites: rewrite("a", "b")}}}},
		{"no config", "Transforms.member.2.HostHeaderRewriteConfig", []types.RuleTransform{both[1], {Type: types.TransformTypeEnumHostHeaderRewrite}}},
		{"two rewrites", "HostHeaderRewriteConfig.Rewrites has 2 rewrites", []types.RuleTransform{host(&types.HostHeaderRewriteConfig{Rewrites: append(rewrite("a", "b"), rewrite("c", "d")...)})}},
		{"no rewrite", "HostHeaderRewriteConfig", []types.RuleTransform{host(&types.HostHeaderRewriteConfig{Rewrites: []types.RewriteConfig{}})}},
		{"empty regex", "Rewrites.member.1.Regex", []types.RuleTransform{host(&types.HostHeaderRewriteConfig{Rewrites: rewrite("", "b")})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.c.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: aws.String(a.listener), Priority: aws.Int32(10), Conditions: prefix, Actions: forwardTo(a.blue), Transforms: tc.ts})
			wantAPIErrorNaming(t, err, api.CodeValidationError, tc.field)
		})
	}

	created := must(a.c.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: aws.String(a.listener), Priority: aws.Int32(10),
		Conditions: prefix, Actions: forwardTo(a.blue), Transforms: both})).of(t).Rules[0]
	want := []string{"host-header-rewrite ^.*$ -> backend.internal", "url-rewrite ^/api/? -> /"}
	if d := cmp.Diff(want, transformsOf(created)); d != "" {
		t.Fatalf("CreateRule's answer (-want +got):\n%s", d)
	}
	id := "rule-" + lastSegment(aws.ToString(created.RuleArn))
	native := must(a.w.Admin.DescribeRules(ctx, &api.DescribeRulesRequest{RuleIDs: []string{id}})).of(t).Rules[0].Transforms
	wantNative := []api.RuleTransform{
		{Type: api.TransformTypeHostHeaderRewrite, HostHeaderRewriteConfig: &api.RewriteConfig{Rewrites: []api.RegexRewrite{{Regex: "^.*$", Replace: "backend.internal"}}}},
		{Type: api.TransformTypeURLRewrite, URLRewriteConfig: &api.RewriteConfig{Rewrites: []api.RegexRewrite{{Regex: `^/api/?`, Replace: "/"}}}},
	}
	if d := cmp.Diff(wantNative, native); d != "" {
		t.Fatalf("the transforms in fakecloud (-want +got):\n%s", d)
	}
	describe := func() types.Rule {
		t.Helper()
		rules := must(a.c.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{aws.ToString(created.RuleArn)}})).of(t).Rules
		if len(rules) != 1 {
			t.Fatalf("DescribeRules answered %d rules", len(rules))
		}
		return rules[0]
	}
	if d := cmp.Diff(want, transformsOf(describe())); d != "" {
		t.Fatalf("DescribeRules (-want +got):\n%s", d)
	}

	// Transforms replace the rule's; a ModifyRule without them keeps them; ResetTransforms
	// removes them.
	one := []types.RuleTransform{{Type: types.TransformTypeEnumUrlRewrite, UrlRewriteConfig: &types.UrlRewriteConfig{Rewrites: rewrite("^([^?]*)", "/v2$1")}}}
	modified := must(a.c.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: created.RuleArn, Transforms: one})).of(t).Rules[0]
	want = []string{"url-rewrite ^([^?]*) -> /v2$1"}
	if d := cmp.Diff(want, transformsOf(modified)); d != "" {
		t.Fatalf("ModifyRule's answer (-want +got):\n%s", d)
	}
	must(a.c.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: created.RuleArn, Actions: forwardTo(a.green)})).of(t)
	if d := cmp.Diff(want, transformsOf(describe())); d != "" {
		t.Fatalf("after a ModifyRule of the actions alone (-want +got):\n%s", d)
	}
	reset := must(a.c.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: created.RuleArn, ResetTransforms: aws.Bool(true)})).of(t).Rules[0]
	if reset.Transforms != nil || describe().Transforms != nil {
		t.Fatalf("after ResetTransforms: %v, described %v", transformsOf(reset), transformsOf(describe()))
	}

	_, err := a.c.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: created.RuleArn, Transforms: one, ResetTransforms: aws.Bool(true)})
	wantAPIErrorNaming(t, err, api.CodeValidationError, "ResetTransforms")
}

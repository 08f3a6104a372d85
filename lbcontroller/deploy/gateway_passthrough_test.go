package deploy_test

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/lbcontroller/deploy"
	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
	"github.com/flatnet/flatnet/providers/fakecloud"
)

var updateGateway = flag.Bool("update-gateway", false, "rewrite testdata/gateway/*.golden")

func fwd(weights ...any) *gateway.Forward {
	var f gateway.Forward
	for i := 0; i+1 < len(weights); i += 2 {
		f.Backends = append(f.Backends, gateway.WeightedBackend{TargetGroup: weights[i].(string), Weight: weights[i+1].(int)})
	}
	return &f
}

func udpGroup(name, ip string) gateway.TargetGroup {
	return gateway.TargetGroup{Name: name, Service: "infra/" + name, Port: 53, Protocol: gateway.ProtocolUDP,
		Targets: []model.Target{{IP: netip.MustParseAddr(ip), Port: 5353, Pod: "infra/" + name + "-0"}}}
}

func tcpGroup(name, ip string) gateway.TargetGroup {
	return gateway.TargetGroup{Name: name, Service: "infra/" + name, Port: 443, Protocol: gateway.ProtocolTCP,
		Targets: []model.Target{{IP: netip.MustParseAddr(ip), Port: 8443, Pod: "infra/" + name + "-0"}}}
}

// cloudState describes what the cloud serves for tags: each listener with its default and
// rules, target groups by their model names.
func cloudState(t *testing.T, d *fakecloud.LoadBalancing, tags map[string]string, tgIDs map[string]string) string {
	t.Helper()
	names := map[string]string{}
	for name, id := range tgIDs {
		names[id] = name
	}
	action := func(a providers.RuleAction) string {
		if a.FixedResponse != nil {
			return fmt.Sprintf("fixed %d", a.FixedResponse.StatusCode)
		}
		if len(a.Forward) == 0 {
			return "refuse"
		}
		var out []string
		for _, g := range a.Forward {
			out = append(out, fmt.Sprintf("%s*%d", names[g.TargetGroupID], g.Weight))
		}
		if a.TLSPassthrough {
			return "forward " + strings.Join(out, " ") + ", TLS passed through"
		}
		return "forward " + strings.Join(out, " ")
	}
	albs, err := d.ListApplicationLoadBalancers(context.Background(), tags)
	if err != nil || len(albs) != 1 {
		t.Fatalf("application load balancers: %+v, %v", albs, err)
	}
	ls := slices.Clone(albs[0].Listeners)
	slices.SortFunc(ls, func(a, b providers.HTTPListener) int {
		if a.Port != b.Port {
			return a.Port - b.Port
		}
		return strings.Compare(a.Protocol, b.Protocol)
	})
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "listener %s/%d default: %s", l.Protocol, l.Port, action(l.DefaultAction))
		if len(l.Certificates) > 0 {
			fmt.Fprintf(&b, ", terminating TLS with %d certificate(s)", len(l.Certificates))
		}
		b.WriteString("\n")
		rules, err := d.ListRules(context.Background(), l.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			fmt.Fprintf(&b, "  rule %d hosts=%s: %s\n", r.Priority, strings.Join(r.Conditions.Hosts, ","), action(r.Action))
		}
	}
	return b.String()
}

var cloudIDs = regexp.MustCompile(`\b(lb|tg|listener|rule|cert)-[0-9a-z]+`)

// TestGatewayPassthrough deploys TLS-passthrough and TCP listeners on the application load
// balancer, beside an HTTP one, through a sequence of models; testdata/gateway/passthrough.golden
// records each step's writes and the cloud's listeners and rules after it (go test
// -update-gateway rewrites it).
func TestGatewayPassthrough(t *testing.T) {
	_, d, _ := setup(t)
	ctx := context.Background()
	gw := &gateway.GatewayLoadBalancers{Namespace: "infra", Name: "l4", UID: "uid-l4"}
	tags := gatewayTags(gw)
	httpListener := gateway.HTTPListener{Port: 80, Protocol: gateway.ProtocolHTTP, Rules: []gateway.Rule{
		{Priority: 1, Source: "HTTPRoute infra/web rule 0", Conditions: gateway.Conditions{Path: &gateway.PathMatch{Type: gateway.MatchPrefix, Value: "/"}}, Action: gateway.Action{FixedResponse: &gateway.FixedResponse{StatusCode: 200}}},
	}}
	steps := []struct {
		name string
		alb  *gateway.ApplicationLoadBalancer
	}{
		{"TLS by SNI (one name refused, one route with an unresolved backend) and TCP, beside HTTP", &gateway.ApplicationLoadBalancer{
			Name:      "alb-l4",
			Listeners: []gateway.HTTPListener{httpListener},
			Passthrough: []gateway.L4Listener{
				{Port: 443, Protocol: gateway.ProtocolTLS, SNI: []gateway.SNIRoute{
					{Hostnames: []string{"a.example.com"}, Source: "TLSRoute infra/a rule 0", Forward: fwd("tls-a", 1)},
					{Hostnames: []string{"b.example.com"}, Source: "TLSRoute infra/b rule 0", Forward: fwd("", 1)},
					{Hostnames: []string{"closed.example.com"}, Source: "listener closed: no route matches"},
					{Hostnames: []string{"*.example.com"}, Source: "TLSRoute infra/wild rule 0", Forward: fwd("tls-a", 1, "tls-b", 3, "", 1)},
				}, Default: fwd("tls-b", 1)},
				{Port: 5432, Protocol: gateway.ProtocolTCP, Default: fwd("tcp", 1)},
				{Port: 5300, Protocol: gateway.ProtocolUDP, Default: fwd("dns", 3, "", 1)},
			},
			TargetGroups: []gateway.TargetGroup{udpGroup("dns", "10.0.1.40"), tcpGroup("tcp", "10.0.1.30"), tcpGroup("tls-a", "10.0.1.10"), tcpGroup("tls-b", "10.0.1.20")},
		}},
		{"the TLS default goes (re-created: a modify keeps a default), the TCP and UDP routes go (no listeners), HTTP only on 80", &gateway.ApplicationLoadBalancer{
			Name:      "alb-l4",
			Listeners: []gateway.HTTPListener{httpListener},
			Passthrough: []gateway.L4Listener{
				{Port: 443, Protocol: gateway.ProtocolTLS, SNI: []gateway.SNIRoute{
					{Hostnames: []string{"a.example.com"}, Source: "TLSRoute infra/a rule 0", Forward: fwd("tls-a", 1)},
				}},
				{Port: 5432, Protocol: gateway.ProtocolTCP},
				{Port: 5300, Protocol: gateway.ProtocolUDP},
			},
			TargetGroups: []gateway.TargetGroup{tcpGroup("tls-a", "10.0.1.10")},
		}},
		{"port 80 turns TLS, 443 gets a default again: passthrough only", &gateway.ApplicationLoadBalancer{
			Name: "alb-l4",
			Passthrough: []gateway.L4Listener{
				{Port: 80, Protocol: gateway.ProtocolTLS, Default: fwd("tls-a", 1)},
				{Port: 443, Protocol: gateway.ProtocolTLS, Default: fwd("tls-a", 1)},
			},
			TargetGroups: []gateway.TargetGroup{tcpGroup("tls-a", "10.0.1.10")},
		}},
		{"DNS on 53/TCP and 53/UDP: ports are per transport", &gateway.ApplicationLoadBalancer{
			Name: "alb-l4",
			Passthrough: []gateway.L4Listener{
				{Port: 53, Protocol: gateway.ProtocolTCP, Default: fwd("tcp", 1)},
				{Port: 53, Protocol: gateway.ProtocolUDP, Default: fwd("dns", 1)},
				{Port: 80, Protocol: gateway.ProtocolTLS, Default: fwd("tls-a", 1)},
				{Port: 443, Protocol: gateway.ProtocolTLS, Default: fwd("tls-a", 1)},
			},
			TargetGroups: []gateway.TargetGroup{udpGroup("dns", "10.0.1.40"), tcpGroup("tcp", "10.0.1.30"), tcpGroup("tls-a", "10.0.1.10")},
		}},
		{"53/TCP goes, 53/UDP stays; 443 turns UDP (the TLS listener goes)", &gateway.ApplicationLoadBalancer{
			Name: "alb-l4",
			Passthrough: []gateway.L4Listener{
				{Port: 53, Protocol: gateway.ProtocolUDP, Default: fwd("dns", 1)},
				{Port: 80, Protocol: gateway.ProtocolTLS, Default: fwd("tls-a", 1)},
				{Port: 443, Protocol: gateway.ProtocolUDP, Default: fwd("dns", 1)},
			},
			TargetGroups: []gateway.TargetGroup{udpGroup("dns", "10.0.1.40"), tcpGroup("tls-a", "10.0.1.10")},
		}},
		{"80/TLS terminates TLS (TLSRoute mode Terminate): its certificate imported, its rules written before the listener takes the certificate (a name passed through must be marked so before the rest terminate)", terminating(t, "terminate")},
		{"80/TLS terminates db.example.com and passes pass.example.com and the default through (TLSRouteModeMixed)", terminating(t, "mixed")},
		{"80/TLS passes TLS through again: re-created (a modify keeps certificates), the certificate collected", terminating(t, "passthrough")},
	}
	var b strings.Builder
	var lbID string
	for i, step := range steps {
		res, err := deploy.ApplicationLoadBalancer(ctx, d, step.alb, tags, fmt.Sprintf("gen%d", i))
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if !res.Programmed || !res.VIP.IsValid() || (lbID != "" && res.LoadBalancerID != lbID) {
			t.Errorf("%s: %+v; want the same load balancer, programmed, with a VIP", step.name, res)
		}
		lbID = res.LoadBalancerID
		fmt.Fprintf(&b, "# %s\n", step.name)
		for _, c := range res.Changes {
			fmt.Fprintf(&b, "%s\n", cloudIDs.ReplaceAllString(c, "$1-*"))
		}
		b.WriteString(cloudState(t, d, tags, res.TargetGroups))
		again, err := deploy.ApplicationLoadBalancer(ctx, d, step.alb, tags, fmt.Sprintf("gen%d-again", i))
		if err != nil || len(again.Changes) != 0 {
			t.Errorf("%s, deployed again: %v (%v); want no change", step.name, again.Changes, err)
		}
		for _, tg := range step.alb.TargetGroups {
			if got := live(t, d, res.TargetGroups[tg.Name]); !slices.Equal(got, []string{tg.Targets[0].String()}) {
				t.Errorf("%s: targets of %s: %v", step.name, tg.Name, got)
			}
		}
	}
	golden := filepath.Join("testdata", "gateway", "passthrough.golden")
	if *updateGateway {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update-gateway to create it)", err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("passthrough deploy (-%s +got):\n%s", golden, diff)
	}
}

func TestGatewayPassthroughBadModel(t *testing.T) {
	_, d, _ := setup(t)
	for _, tc := range []struct {
		name string
		l    gateway.L4Listener
		want string
	}{
		{"SCTP on an application load balancer", gateway.L4Listener{Port: 53, Protocol: "SCTP", Default: fwd("tcp", 1)}, `protocol "SCTP" cannot be passed through`},
		{"UDP to a TCP group", gateway.L4Listener{Port: 53, Protocol: gateway.ProtocolUDP, Default: fwd("tcp", 1)}, "UDP target groups"},
		{"SNI routes on UDP", gateway.L4Listener{Port: 53, Protocol: gateway.ProtocolUDP, SNI: []gateway.SNIRoute{{Hostnames: []string{"a"}}}, Default: fwd("tcp", 1)}, "a UDP listener has no SNI routes"},
		{"SNI routes on TCP", gateway.L4Listener{Port: 53, Protocol: gateway.ProtocolTCP, SNI: []gateway.SNIRoute{{Hostnames: []string{"a"}}}, Default: fwd("tcp", 1)}, "a TCP listener has no SNI routes"},
		{"a group not in the model", gateway.L4Listener{Port: 443, Protocol: gateway.ProtocolTLS, Default: fwd("nope", 1)}, "no such target group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alb := &gateway.ApplicationLoadBalancer{Name: "bad", Passthrough: []gateway.L4Listener{tc.l}, TargetGroups: []gateway.TargetGroup{tcpGroup("tcp", "10.0.1.30")}}
			_, err := deploy.ApplicationLoadBalancer(context.Background(), d, alb, map[string]string{"flatnet.io/cluster": "test", "flatnet.io/gateway": "infra/bad"}, "g")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v; want one saying %q", err, tc.want)
			}
		})
	}
}

// terminating is the passthrough test's last model with 80/TLS terminating TLS ("terminate"),
// terminating one name and passing the others through ("mixed"), or passing all through.
func terminating(t *testing.T, mode string) *gateway.ApplicationLoadBalancer {
	alb := &gateway.ApplicationLoadBalancer{
		Name: "alb-l4",
		Passthrough: []gateway.L4Listener{
			{Port: 53, Protocol: gateway.ProtocolUDP, Default: fwd("dns", 1)},
			{Port: 80, Protocol: gateway.ProtocolTLS, SNI: []gateway.SNIRoute{
				{Hostnames: []string{"db.example.com"}, Source: "TLSRoute infra/db rule 0", Forward: fwd("tls-a", 1)},
			}, Default: fwd("tls-a", 1)},
			{Port: 443, Protocol: gateway.ProtocolUDP, Default: fwd("dns", 1)},
		},
		TargetGroups: []gateway.TargetGroup{udpGroup("dns", "10.0.1.40"), tcpGroup("tls-a", "10.0.1.10")},
	}
	if mode == "mixed" {
		l := &alb.Passthrough[1]
		l.SNI = append(l.SNI, gateway.SNIRoute{Hostnames: []string{"pass.example.com"}, Source: "TLSRoute infra/pass rule 0", Forward: fwd("tls-a", 1), Passthrough: true})
		l.DefaultPassthrough = true
	}
	if mode != "passthrough" {
		alb.Passthrough[1].Certificates = []gateway.Certificate{{Hostnames: []string{"db.example.com"}, Secret: "infra/db"}}
		withCertificates(t, alb, map[string]string{"infra/db": "db.example.com"})
	}
	return alb
}

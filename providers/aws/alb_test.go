package aws

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/providers"
	"github.com/flatnet/flatnet/providers/providertest"
)

// TestApplicationLoadBalancingContract runs the application load balancing contract against
// fakecloud's ELBv2 and ACM endpoints, signing with a load-balancer token's keys (in this package,
// so that the IAM policy test sees every operation the contract makes the driver call). ELBv2
// carries the core actions only: the suite checks that the driver refuses the others.
func TestApplicationLoadBalancingContract(t *testing.T) {
	providertest.RunApplicationLoadBalancing(t, func(t *testing.T) providertest.ApplicationLoadBalancingEnv {
		w := &world{Env: servertest.Start(t, servertest.Options{}), ops: &opLog{seen: map[string]bool{}}}
		key := servertest.LoadBalancerAWSKey(w.LoadBalancerToken(t))
		return providertest.ApplicationLoadBalancingEnv{Cloud: w.Env, CoreActionsOnly: true, New: func(t *testing.T, sn api.Subnet) providers.ApplicationLoadBalancing {
			d, err := NewLoadBalancing(context.Background(), LBConfig{Config: w.config(key, "lbcontroller"), SubnetID: sn.SubnetID, PollInterval: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			return d
		}}
	})
}

// TestConditionsRoundTrip: what the driver writes as ELBv2 conditions reads back as the same
// seam conditions; what ELBv2 cannot say is refused before any call, naming it.
func TestConditionsRoundTrip(t *testing.T) {
	grpcCT := gateway.GRPCContentType()
	for _, c := range []providers.RuleConditions{
		{Path: &providers.StringMatch{Type: providers.MatchPrefix, Value: "/"}},
		{Path: &providers.StringMatch{Type: providers.MatchPrefix, Value: "/api"}},
		{Path: &providers.StringMatch{Type: providers.MatchPrefix, Value: "/a.b+c"}},
		{Path: &providers.StringMatch{Type: providers.MatchExact, Value: "/old"}},
		{Path: &providers.StringMatch{Type: providers.MatchRegex, Value: "/v[0-9]+/.*"}},
		{Hosts: []string{"a.example.com", "*.example.com"}, Method: "POST"},
		{Headers: []providers.StringMatch{{Name: "x-v", Type: providers.MatchExact, Value: "1"}, {Name: "x-w", Type: providers.MatchRegex, Value: `a.*b\.c.`}}},
		{Query: []providers.StringMatch{{Name: "q", Type: providers.MatchRegex, Value: "a.*"}}},
		{Headers: []providers.StringMatch{{Name: "x", Type: providers.MatchRegex, Value: `a|b\.c.*|\|d`}}},
		// What lbcontroller gives every GRPCRoute rule: the gRPC content type, the method's path,
		// one host (five values, ELBv2's quota).
		{Hosts: []string{"grpc.example.com"}, Path: &providers.StringMatch{Type: providers.MatchExact, Value: "/grpc.health.v1.Health/Check"},
			Headers: []providers.StringMatch{{Name: grpcCT.Name, Type: grpcCT.Type, Value: grpcCT.Value}}},
	} {
		conds, err := toELBConditions(c)
		if err != nil {
			t.Errorf("%+v: %v", c, err)
			continue
		}
		back, err := fromELBConditions(conds)
		if err != nil {
			t.Errorf("%+v read back: %v", c, err)
			continue
		}
		if d := cmp.Diff(c, back); d != "" {
			t.Errorf("round trip (-wrote +read):\n%s", d)
		}
	}
	for name, c := range map[string]providers.RuleConditions{
		"exact with a wildcard": {Path: &providers.StringMatch{Type: providers.MatchExact, Value: "/a*"}},
		"header regex":          {Headers: []providers.StringMatch{{Name: "x", Type: providers.MatchRegex, Value: "(a|b)c"}}},
		"four alternatives":     {Headers: []providers.StringMatch{{Name: "x", Type: providers.MatchRegex, Value: "a|b|c|d"}}},
		"query class":           {Query: []providers.StringMatch{{Name: "q", Type: providers.MatchRegex, Value: "[0-9]+"}}},
	} {
		_, err := toELBConditions(c)
		var pe *providers.Error
		if !errors.Is(err, providers.ErrInvalid) || !errors.As(err, &pe) || pe.Code != codeUnsupported {
			t.Errorf("%s: %v; want ErrInvalid (%s)", name, err, codeUnsupported)
		}
	}
	for _, p := range []string{providers.ProtocolTLS, providers.ProtocolTCP, providers.ProtocolUDP} {
		_, err := (&LoadBalancing{}).CreateHTTPListener(context.Background(), "lb", providers.HTTPListenerSpec{Protocol: p, Port: 443})
		var pe *providers.Error
		if !errors.Is(err, providers.ErrInvalid) || !errors.As(err, &pe) || pe.Code != codeUnsupported {
			t.Errorf("%s listener: %v; want ErrInvalid (%s)", p, err, codeUnsupported)
		}
		if err == nil || !strings.Contains(err.Error(), p+" listeners on an application load balancer") || !strings.Contains(err.Error(), "network load balancers") {
			t.Errorf("%s listener: %v; want it to name the protocol and point to network load balancers", p, err)
		}
	}
	// ELBv2 validates client certificates against trust stores, which the driver does not
	// manage: a listener asking for it is refused before any call, on create and modify.
	mtls := providers.HTTPListenerSpec{Protocol: "HTTPS", Port: 443, Certificates: []string{"cert"},
		ClientValidation: &providers.ClientValidation{Verify: true, CAPEM: []byte("-----BEGIN CERTIFICATE-----")}}
	for op, call := range map[string]func() error{
		"CreateHTTPListener": func() error {
			_, err := (&LoadBalancing{}).CreateHTTPListener(context.Background(), "lb", mtls)
			return err
		},
		"ModifyHTTPListener": func() error {
			_, err := (&LoadBalancing{}).ModifyHTTPListener(context.Background(), "listener", mtls)
			return err
		},
	} {
		err := call()
		var pe *providers.Error
		if !errors.Is(err, providers.ErrInvalid) || !errors.As(err, &pe) || pe.Code != codeUnsupported {
			t.Errorf("%s with ClientValidation: %v; want ErrInvalid (%s)", op, err, codeUnsupported)
		}
		if err == nil || !strings.Contains(err.Error(), "client certificate validation on HTTPS listener 443") || !strings.Contains(err.Error(), "trust stores") {
			t.Errorf("%s with ClientValidation: %v; want it to name the listener and the trust stores the driver lacks", op, err)
		}
	}
	for name, a := range map[string]providers.RuleAction{
		"redirect 307":    {Redirect: &providers.Redirect{StatusCode: 307}},
		"prefix redirect": {Redirect: &providers.Redirect{StatusCode: 302, Path: &providers.PathModifier{Type: providers.ReplacePrefixMatch, Value: "/x"}}},
		"mirror":          {Forward: []providers.WeightedTargetGroup{{TargetGroupID: "tg", Weight: 1}}, Mirrors: []providers.Mirror{{TargetGroupID: "m", Percent: 1}}},
		"TLS passthrough": {Forward: []providers.WeightedTargetGroup{{TargetGroupID: "tg", Weight: 1}}, TLSPassthrough: true},
		"CORS":            {Forward: []providers.WeightedTargetGroup{{TargetGroupID: "tg", Weight: 1}}, CORS: &providers.CORS{AllowOrigins: []string{"*"}}},
	} {
		if _, err := toELBAction(a); !errors.Is(err, providers.ErrInvalid) {
			t.Errorf("%s: %v; want ErrInvalid", name, err)
		}
	}
}

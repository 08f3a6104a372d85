package providers

import "context"

// ApplicationLoadBalancing returns d with every call made under the policy, as LoadBalancing
// does: creates without a client token get one, kept across the attempts.
func (p *Policy) ApplicationLoadBalancing(d ApplicationLoadBalancing) ApplicationLoadBalancing {
	return policyALB{policyLB: policyLB{p: p, d: d}, d: d}
}

type policyALB struct {
	policyLB
	d ApplicationLoadBalancing
}

func (w policyALB) ListApplicationLoadBalancers(ctx context.Context, tags map[string]string) ([]ApplicationLoadBalancer, error) {
	return do1(ctx, w.p, func(ctx context.Context) ([]ApplicationLoadBalancer, error) {
		return w.d.ListApplicationLoadBalancers(ctx, tags)
	})
}

func (w policyALB) CreateApplicationLoadBalancer(ctx context.Context, spec LoadBalancerSpec) (ApplicationLoadBalancer, error) {
	if spec.ClientToken == "" {
		spec.ClientToken = NewToken()
	}
	return do1(ctx, w.p, func(ctx context.Context) (ApplicationLoadBalancer, error) {
		return w.d.CreateApplicationLoadBalancer(ctx, spec)
	})
}

func (w policyALB) CreateHTTPListener(ctx context.Context, lbID string, spec HTTPListenerSpec) (HTTPListener, error) {
	if spec.ClientToken == "" {
		spec.ClientToken = NewToken()
	}
	return do1(ctx, w.p, func(ctx context.Context) (HTTPListener, error) { return w.d.CreateHTTPListener(ctx, lbID, spec) })
}

func (w policyALB) ModifyHTTPListener(ctx context.Context, id string, spec HTTPListenerSpec) (HTTPListener, error) {
	return do1(ctx, w.p, func(ctx context.Context) (HTTPListener, error) { return w.d.ModifyHTTPListener(ctx, id, spec) })
}

func (w policyALB) ListRules(ctx context.Context, listenerID string) ([]Rule, error) {
	return do1(ctx, w.p, func(ctx context.Context) ([]Rule, error) { return w.d.ListRules(ctx, listenerID) })
}

func (w policyALB) CreateRule(ctx context.Context, listenerID string, spec RuleSpec) (Rule, error) {
	if spec.ClientToken == "" {
		spec.ClientToken = NewToken()
	}
	return do1(ctx, w.p, func(ctx context.Context) (Rule, error) { return w.d.CreateRule(ctx, listenerID, spec) })
}

func (w policyALB) ModifyRule(ctx context.Context, id string, spec RuleSpec) (Rule, error) {
	return do1(ctx, w.p, func(ctx context.Context) (Rule, error) { return w.d.ModifyRule(ctx, id, spec) })
}

func (w policyALB) DeleteRule(ctx context.Context, id string) error {
	return w.p.Do(ctx, func(ctx context.Context) error { return w.d.DeleteRule(ctx, id) })
}

func (w policyALB) SetRulePriorities(ctx context.Context, priorities map[string]int) error {
	return w.p.Do(ctx, func(ctx context.Context) error { return w.d.SetRulePriorities(ctx, priorities) })
}

func (w policyALB) ListCertificates(ctx context.Context, tags map[string]string) ([]Certificate, error) {
	return do1(ctx, w.p, func(ctx context.Context) ([]Certificate, error) { return w.d.ListCertificates(ctx, tags) })
}

func (w policyALB) ImportCertificate(ctx context.Context, spec CertificateSpec) (Certificate, error) {
	if spec.ClientToken == "" {
		spec.ClientToken = NewToken()
	}
	return do1(ctx, w.p, func(ctx context.Context) (Certificate, error) { return w.d.ImportCertificate(ctx, spec) })
}

func (w policyALB) DeleteCertificate(ctx context.Context, id string) error {
	return w.p.Do(ctx, func(ctx context.Context) error { return w.d.DeleteCertificate(ctx, id) })
}

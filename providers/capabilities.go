package providers

// Capabilities are what a cloud's load balancers can do beyond the interfaces' contract.
type Capabilities struct {
	// L4OnApplicationLB: application load balancers also serve TLS-passthrough, TCP and UDP
	// listeners (fakecloud's extension). Without it (ELBv2) a Gateway's L4 listeners need a
	// network load balancer of their own.
	L4OnApplicationLB bool
	// HostnameScopes: HTTPS listeners take HostnameScopes and answer 421 Misdirected Request
	// to a request whose Host falls in another scope than its connection's SNI name
	// (fakecloud's extension; ELBv2 has none). Without it a driver refuses HostnameScopes.
	HostnameScopes bool
	// RuleLimits: the cloud's rules express less than RuleSpec, and CreateRule refuses some;
	// the driver's RuleChecker says which before any call (ELBv2). Without it every rule is
	// taken and nobody needs to ask.
	RuleLimits bool
	// StaticAddresses: a load balancer can be created at an address of the caller's choosing
	// (LoadBalancerSpec.Address; Gateway API's spec.addresses values, a Service's
	// lb.flatnet.io/address or spec.loadBalancerIP). Without it a driver
	// refuses an Address with ErrInvalid.
	StaticAddresses bool
	// BackendTLSVerification: HTTPS target groups take TargetGroupSpec.TLS, and the load
	// balancer verifies its targets' certificates (fakecloud's extension; ELBv2 verifies
	// none). Without it a driver refuses TLS with ErrInvalid.
	BackendTLSVerification bool
	// BackendClientCertificates: HTTPS target groups take TargetGroupSpec.ClientCertificateID,
	// and the load balancer presents that certificate to its targets (fakecloud's extension;
	// ELBv2 presents none). Without it a driver refuses ClientCertificateID with ErrInvalid.
	BackendClientCertificates bool
	// FrontendClientValidation: HTTPS listeners take HTTPListenerSpec.ClientValidation (mutual
	// TLS with clients). ELBv2 has it with trust stores, which the AWS driver does not manage
	// yet: without it a driver refuses ClientValidation with ErrInvalid.
	FrontendClientValidation bool
}

// CapabilityReporter is implemented by drivers (and the policy wrappers) that say what they
// can do; see CapabilitiesOf.
type CapabilityReporter interface {
	Capabilities() Capabilities
}

// CapabilitiesOf answers p's capabilities. A driver that does not report them is taken to
// serve L4 listeners on application load balancers, and to have no hostname scopes.
func CapabilitiesOf(p any) Capabilities {
	if c, ok := p.(CapabilityReporter); ok {
		return c.Capabilities()
	}
	return Capabilities{L4OnApplicationLB: true}
}

// Capabilities forwards the wrapped driver's.
func (w policyLB) Capabilities() Capabilities { return CapabilitiesOf(w.d) }

// RuleChecker is implemented by drivers whose clouds express less than RuleSpec does (ELBv2:
// no header changes, mirrors, timeouts or retries, rewrites only on a rule that forwards,
// redirects with 301 or 302 only, wildcards for regular expressions). CheckRule answers, without calling the cloud, whether
// CreateRule would take spec's conditions and action: nil, or the ErrInvalid CreateRule would
// return, naming what the cloud cannot express. Target group IDs are not checked.
type RuleChecker interface {
	CheckRule(spec RuleSpec) error
}

// CheckRule asks p's RuleChecker about spec; a driver without one takes every rule.
func CheckRule(p any, spec RuleSpec) error {
	if c, ok := p.(RuleChecker); ok {
		return c.CheckRule(spec)
	}
	return nil
}

// CheckRule forwards to the wrapped driver's.
func (w policyLB) CheckRule(spec RuleSpec) error { return CheckRule(w.d, spec) }

package providers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Observer is told about every cloud API call a driver makes (for metrics): the cloud's name of
// the action, how long it took, and its error (nil, or an *Error).
type Observer func(action string, took time.Duration, err error)

// Settings are the static facts a driver is built from, whatever the cloud. A driver ignores
// what it has no use for and says which required setting is missing.
type Settings struct {
	// Endpoint is the cloud API's URL. fakecloud: required. AWS: an endpoint override for
	// the EC2 and ELBv2 clients (fakecloud's AWS front end, a VPC endpoint); empty for the
	// public regional endpoints.
	Endpoint string
	// Region the driver works in; empty takes the cloud's default (AWS: the standard
	// configuration chain, then the instance metadata service). fakecloud has one region.
	Region string
	// Credentials says where the driver's credentials come from.
	Credentials Credentials
	// SubnetID is where a LoadBalancing driver creates load balancers (their VPC is where
	// target groups go). IPAM drivers ignore it: an instance's subnet comes from the cloud.
	SubnetID string
	// Observe, when set, sees every API call.
	Observe Observer
}

// Credentials says where a driver's credentials come from. The zero value means the cloud's
// default chain (fakecloud: none, the caller passes a Token; AWS: environment, shared
// configuration, the instance's role through the metadata service).
type Credentials struct {
	// Token is a bearer token: fakecloud's instance token (ipamd) or account token
	// (lbcontroller).
	Token string
	// File holds the credentials: fakecloud: the token; AWS: a shared-credentials file whose
	// default profile is used.
	File string
}

// Driver is one cloud's entry in a Registry: its --cloud name and constructors for what it
// implements. A nil constructor means the cloud offers nothing for that consumer.
type Driver struct {
	Name             string
	NewIPAM          func(ctx context.Context, s Settings) (IPAM, error)
	NewLoadBalancing func(ctx context.Context, s Settings) (LoadBalancing, error)
}

// Registry maps --cloud names to drivers. A binary builds one from the drivers it carries
// (providers/all has them all); consumers take it, or an already built driver, from their
// caller and never pick a driver themselves.
type Registry struct {
	drivers map[string]Driver
}

// NewRegistry returns a registry of drivers. Two drivers of one name, or a nameless one, are
// a wiring mistake and panic.
func NewRegistry(drivers ...Driver) *Registry {
	r := &Registry{drivers: make(map[string]Driver, len(drivers))}
	for _, d := range drivers {
		if d.Name == "" {
			panic("providers: a driver without a name")
		}
		if _, dup := r.drivers[d.Name]; dup {
			panic(fmt.Sprintf("providers: two drivers named %q", d.Name))
		}
		r.drivers[d.Name] = d
	}
	return r
}

// Names returns the registered clouds, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.drivers))
	for n := range r.drivers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// namesWith returns the clouds whose driver has has, sorted.
func (r *Registry) namesWith(has func(Driver) bool) string {
	var names []string
	for _, n := range r.Names() {
		if has(r.drivers[n]) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// IPAM builds the IPAM driver of cloud name.
func (r *Registry) IPAM(ctx context.Context, name string, s Settings) (IPAM, error) {
	has := func(d Driver) bool { return d.NewIPAM != nil }
	d, ok := r.drivers[name]
	if !ok || !has(d) {
		return nil, r.unknown(name, ok, "IPAM", has)
	}
	p, err := d.NewIPAM(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("cloud %s: %w", name, err)
	}
	return p, nil
}

// LoadBalancing builds the load balancing driver of cloud name.
func (r *Registry) LoadBalancing(ctx context.Context, name string, s Settings) (LoadBalancing, error) {
	has := func(d Driver) bool { return d.NewLoadBalancing != nil }
	d, ok := r.drivers[name]
	if !ok || !has(d) {
		return nil, r.unknown(name, ok, "load balancing", has)
	}
	p, err := d.NewLoadBalancing(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("cloud %s: %w", name, err)
	}
	return p, nil
}

func (r *Registry) unknown(name string, known bool, what string, has func(Driver) bool) error {
	if known {
		return fmt.Errorf("cloud %q has no %s driver: use one of %s (--cloud)", name, what, r.namesWith(has))
	}
	return fmt.Errorf("cloud %q is unknown: this binary has %s drivers for %s (--cloud)", name, what, r.namesWith(has))
}

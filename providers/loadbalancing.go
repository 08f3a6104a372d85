package providers

import (
	"context"
	"net/netip"
	"time"
)

// LoadBalancing is what lbcontroller needs from a cloud. Every create is idempotent: the same name
// and settings (and the same client token) answer the existing resource, so a pass cut short by
// a crash can simply run again. Deletes of what is already gone succeed.
type LoadBalancing interface {
	LoadBalancers
	TargetGroups
	Targets
	Tagging
	// WatchHealth calls fn with target health as the cloud pushes it, until ctx ends; see
	// HealthEvent. It returns ctx's error, or the error that stopped the stream.
	WatchHealth(ctx context.Context, fn func(HealthEvent)) error
}

// LoadBalancers manages load balancers and their listeners.
type LoadBalancers interface {
	// ListLoadBalancers returns the load balancers carrying every tag of tags, with listeners.
	ListLoadBalancers(ctx context.Context, tags map[string]string) ([]LoadBalancer, error)
	// CreateLoadBalancer creates one (or answers the existing one of that name and scheme).
	CreateLoadBalancer(ctx context.Context, spec LoadBalancerSpec) (LoadBalancer, error)
	// SetSourceRanges replaces the CIDRs allowed to connect (empty: everyone).
	SetSourceRanges(ctx context.Context, loadBalancerID string, ranges []netip.Prefix) error
	// DeleteLoadBalancer deletes a load balancer and its listeners.
	DeleteLoadBalancer(ctx context.Context, loadBalancerID string) error
	// CreateListener makes the load balancer forward protocol/port to a target group.
	CreateListener(ctx context.Context, loadBalancerID string, l ListenerSpec) (Listener, error)
	// DeleteListener deletes one listener.
	DeleteListener(ctx context.Context, listenerID string) error
}

// Tagging changes the tags of resources that exist: load balancers, target groups and
// certificates (ApplicationLoadBalancing's), by the IDs the other calls answer. lbcontroller
// uses it to keep the tags users ask for (a Gateway's spec.infrastructure.labels) on what it
// created; the ownership tags it selects by are set at create and never changed. A resource
// holds at most MaxTags tags; keys are 1 to MaxTagKeyLength characters, values at most
// MaxTagValueLength, and keys starting with "aws:" are the cloud's (ErrInvalid).
type Tagging interface {
	// TagResources adds tags to each resource of ids, overwriting the values of keys it
	// already has. An invalid key or value is ErrInvalid and changes nothing. An ID the cloud
	// does not know (of a resource deleted, say) is ErrNotFound; a resource that would hold
	// more than MaxTags tags is ErrInvalid. Drivers may split a call over several cloud calls
	// (ELBv2 and ACM do), so after those two errors some resources may be tagged already:
	// calling again with the same arguments is safe.
	TagResources(ctx context.Context, ids []string, tags map[string]string) error
	// UntagResources removes keys from each resource of ids; a key a resource lacks is no
	// error. An ID the cloud does not know is ErrNotFound (the others may be done).
	UntagResources(ctx context.Context, ids []string, keys []string) error
}

// Tag limits of the clouds flatnet drives (ELBv2's and ACM's; fakecloud keeps the same).
const (
	MaxTags           = 50
	MaxTagKeyLength   = 128
	MaxTagValueLength = 256
)

// TargetGroups manages target groups.
type TargetGroups interface {
	// ListTargetGroups returns the target groups carrying every tag of tags.
	ListTargetGroups(ctx context.Context, tags map[string]string) ([]TargetGroup, error)
	// CreateTargetGroup creates one (or answers the existing one of that name and settings).
	CreateTargetGroup(ctx context.Context, spec TargetGroupSpec) (TargetGroup, error)
	// UpdateTargetGroup sets the health check and the deregistration delay.
	UpdateTargetGroup(ctx context.Context, targetGroupID string, hc HealthCheck, deregistrationDelay time.Duration) error
	// DeleteTargetGroup deletes a group and its targets; no listener may forward to it.
	DeleteTargetGroup(ctx context.Context, targetGroupID string) error
}

// Targets manages the targets of a group, in batches: one call registers or deregisters many.
type Targets interface {
	// DescribeTargets returns every registered target of a group with its health.
	DescribeTargets(ctx context.Context, targetGroupID string) ([]TargetHealth, error)
	// RegisterTargets adds targets (a draining one becomes live again).
	RegisterTargets(ctx context.Context, targetGroupID string, targets []Target) error
	// DeregisterTargets starts draining targets: established connections continue until the
	// group's deregistration delay ends, new ones go elsewhere.
	DeregisterTargets(ctx context.Context, targetGroupID string, targets []Target) error
}

// LoadBalancerSpec is what CreateLoadBalancer needs.
type LoadBalancerSpec struct {
	Name     string
	Internal bool
	// Address is the VIP asked for (a static address; Capabilities.StaticAddresses): the
	// public address of an internet-facing load balancer, the private one of an internal one.
	// The zero Addr lets the cloud pick. An address the cloud cannot give (outside its pool or
	// subnet, reserved, or held by another) is ErrAddressUnusable.
	Address netip.Addr
	Tags    map[string]string
	// ClientToken makes a repeated create answer the first one's result.
	ClientToken string
}

// LoadBalancer is one load balancer as the cloud shows it.
type LoadBalancer struct {
	ID       string
	Name     string
	Internal bool
	// VIP is the address clients connect to (public for an internet-facing load balancer).
	VIP          netip.Addr
	SourceRanges []netip.Prefix
	Tags         map[string]string
	Listeners    []Listener
	// State is the cloud's verdict on the load balancer: LBProvisioning, LBActive or LBFailed
	// (with StateReason). Only an active one is known to forward traffic.
	State       string
	StateReason string
}

// Load balancer states the controller distinguishes; a driver maps its cloud's onto them
// (a cloud state it does not know maps to LBProvisioning, never to LBActive).
const (
	LBProvisioning = "provisioning"
	LBActive       = "active"
	LBFailed       = "failed"
)

// LoadBalancerState is a load balancer's state as the watch delivers it.
type LoadBalancerState struct {
	ID     string
	State  string
	Reason string
	// Gone: the load balancer was deleted (a watch event only).
	Gone bool
}

// ListenerSpec is one listener to create.
type ListenerSpec struct {
	Protocol      string // TCP or UDP
	Port          int
	TargetGroupID string
	ClientToken   string
}

// Listener is one listener of a load balancer.
type Listener struct {
	ID            string
	Protocol      string
	Port          int
	TargetGroupID string
}

// HealthCheck says how the cloud probes targets. Port 0 means each target's own port.
type HealthCheck struct {
	Protocol           string // TCP or HTTP
	Port               int
	Path               string // HTTP only
	Interval           time.Duration
	Timeout            time.Duration
	HealthyThreshold   int
	UnhealthyThreshold int
}

// TargetGroupSpec is what CreateTargetGroup needs.
type TargetGroupSpec struct {
	Name     string
	Protocol string // TCP or UDP; HTTP, HTTPS or TLS for application load balancers
	// ProtocolVersion (HTTP and HTTPS groups only): ProtocolVersionHTTP1 (the default),
	// ProtocolVersionHTTP2 or ProtocolVersionGRPC.
	ProtocolVersion     string
	Port                int
	HealthCheck         HealthCheck
	DeregistrationDelay time.Duration
	// TLS (HTTPS and TLS groups only; Capabilities.BackendTLSVerification) makes the load balancer
	// verify its targets' certificates. nil: they are not verified, as ELBv2's HTTPS groups.
	// It cannot change: a group with other settings is another group.
	TLS *BackendTLS
	// ClientCertificateID (HTTPS and TLS groups only; Capabilities.BackendClientCertificates) is an
	// imported certificate (ApplicationLoadBalancing.ImportCertificate) the load balancer
	// presents to the targets as its TLS client certificate (Gateway API's
	// spec.tls.backend.clientCertificateRef). Empty: none. It cannot change either.
	ClientCertificateID string
	Tags                map[string]string
	ClientToken         string
}

// BackendTLS is how a load balancer verifies the certificate of an HTTPS group's targets
// (Gateway API's BackendTLSPolicy).
type BackendTLS struct {
	// ServerName is sent as SNI and, when SubjectAltNames is empty, is the name the
	// certificate must hold.
	ServerName string
	// CAPEM is the roots the target's chain must end at (PEM). With SystemRoots the cloud's
	// own trust store is used instead; exactly one of the two is set.
	CAPEM       []byte
	SystemRoots bool
	// SubjectAltNames, when set, replace ServerName in the check: the certificate must hold
	// one of them.
	SubjectAltNames []SubjectAltName
}

// SubjectAltName is one name a target's certificate may hold.
type SubjectAltName struct {
	Type  string // SANHostname or SANURI
	Value string // a DNS name (a leading "*." allowed) or an absolute URI
}

// Subject alternative name types.
const (
	SANHostname = "Hostname"
	SANURI      = "URI"
)

// TargetGroup is one target group as the cloud shows it.
type TargetGroup struct {
	ID                  string
	Name                string
	Protocol            string
	ProtocolVersion     string
	Port                int
	HealthCheck         HealthCheck
	DeregistrationDelay time.Duration
	TLS                 *BackendTLS // as TargetGroupSpec's
	ClientCertificateID string      // as TargetGroupSpec's
	Tags                map[string]string
}

// Target is one (IP, port) of a target group.
type Target struct {
	IP   netip.Addr
	Port int
}

// Health states the controller distinguishes; a cloud's other states map to Unhealthy.
const (
	HealthInitial   = "initial"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
	HealthDraining  = "draining"
	HealthUnused    = "unused"
)

// TargetHealth is one registered target's health.
type TargetHealth struct {
	TargetGroupID string
	Target        Target
	State         string
	Reason        string
	// Gone: the target left the group (a watch event only).
	Gone bool
}

// HealthEvent is what WatchHealth delivers. With Full set, Targets is every registered target
// of every group (the watcher's starting point, and again after it missed changes): the receiver
// replaces what it knew. Otherwise Targets are the targets whose health changed.
type HealthEvent struct {
	Full    bool
	Targets []TargetHealth
	// LoadBalancers are the load balancers whose state changed (with Full: every load
	// balancer).
	LoadBalancers []LoadBalancerState
}

package model

import (
	"net/netip"
	"strings"
)

// Ownership tags on every cloud resource the controller creates. They are how the controller
// finds what it owns (there is no local record to lose in a crash).
const (
	TagCluster    = "flatnet.io/cluster"
	TagService    = "flatnet.io/service"     // namespace/name
	TagServiceUID = "flatnet.io/service-uid" // the Service's UID: a re-created Service is another owner
	TagPort       = "flatnet.io/service-port"
)

// Schemes.
const (
	SchemeInternal       = "internal"
	SchemeInternetFacing = "internet-facing"
	// DefaultScheme is a Service's scheme when neither its annotation nor the cluster's setting
	// (flatnet-lbcontroller --default-scheme, the chart's lbcontroller.defaultScheme) says. It is
	// internet-facing, as the in-tree cloud providers do, deliberately: a Service of type
	// LoadBalancer asks to be reachable, and a load balancer's name includes its scheme, so
	// changing the default would replace the load balancer (and its address) of every existing
	// Service without the annotation. Clusters that want internal ones set it per cluster.
	DefaultScheme = SchemeInternetFacing
)

// Protocols of listeners, target groups and health checks.
const (
	ProtocolTCP  = "TCP"
	ProtocolUDP  = "UDP"
	ProtocolHTTP = "HTTP" // health checks only
)

// LoadBalancer is the desired load balancer of one Service.
type LoadBalancer struct {
	// Name is stable for the Service's UID, scheme and address (a change of any needs a new
	// load balancer).
	Name   string `json:"name"`
	Scheme string `json:"scheme"`
	// Address is the VIP the load balancer is created at (AnnotationAddress,
	// spec.loadBalancerIP); the zero Addr: the cloud picks one.
	Address netip.Addr `json:"address,omitzero"`
	// SourceRanges are the IPv4 CIDRs allowed to connect, canonical and sorted; empty: everyone.
	SourceRanges []netip.Prefix    `json:"sourceRanges,omitempty"`
	Tags         map[string]string `json:"tags"`
	// UserTags are tags the owner asks for (UserTagProblem: none of them flatnet's), on the
	// load balancer and its target groups; they may change while those live.
	UserTags     map[string]string `json:"userTags,omitempty"`
	Listeners    []Listener        `json:"listeners"`
	TargetGroups []TargetGroup     `json:"targetGroups"`
	Owner        Owner             `json:"owner"`
}

// Owner identifies the Service a load balancer belongs to.
type Owner struct {
	Cluster   string `json:"cluster"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
}

// Key is namespace/name, the value of TagService.
func (o Owner) Key() string { return o.Namespace + "/" + o.Name }

// Tags are the ownership tags of every resource of this owner.
func (o Owner) Tags() map[string]string {
	return map[string]string{TagCluster: o.Cluster, TagService: o.Key(), TagServiceUID: o.UID}
}

// Listener forwards Protocol/Port of the VIP to the target group named TargetGroup.
type Listener struct {
	Protocol    string `json:"protocol"`
	Port        int    `json:"port"`
	TargetGroup string `json:"targetGroup"`
}

// HealthCheck says how the cloud probes targets; Port 0 is each target's own port.
type HealthCheck struct {
	Protocol                string `json:"protocol"`
	Port                    int    `json:"port,omitempty"`
	Path                    string `json:"path,omitempty"`
	IntervalSeconds         int    `json:"intervalSeconds"`
	TimeoutSeconds          int    `json:"timeoutSeconds"`
	HealthyThresholdCount   int    `json:"healthyThreshold"`
	UnhealthyThresholdCount int    `json:"unhealthyThreshold"`
}

// TargetGroup is the targets of one Service port.
type TargetGroup struct {
	Name string `json:"name"`
	// ServicePort is the Service port's name (may be empty for a single-port Service).
	ServicePort                string            `json:"servicePort"`
	Protocol                   string            `json:"protocol"`
	Port                       int               `json:"port"`
	HealthCheck                HealthCheck       `json:"healthCheck"`
	DeregistrationDelaySeconds int               `json:"deregistrationDelaySeconds"`
	Tags                       map[string]string `json:"tags"`
	// Targets are the endpoints that take new connections, sorted by address and port.
	Targets []Target `json:"targets"`
	// Draining are serving but terminating endpoints: they must not be registered, so the cloud
	// drains them (established connections continue until the delay ends).
	Draining []Target `json:"draining,omitempty"`
}

// Target is one endpoint: address, port, and the pod behind it ("namespace/name", if known).
type Target struct {
	IP   netip.Addr `json:"ip"`
	Port int        `json:"port"`
	Pod  string     `json:"pod,omitempty"`
}

// InvalidError is a Service the controller cannot build a load balancer for; Problems says
// what is wrong, each in a sentence a user can act on.
type InvalidError struct {
	Problems []string
}

func (e *InvalidError) Error() string { return strings.Join(e.Problems, "; ") }

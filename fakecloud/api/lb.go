package api

import (
	"net"
	"strconv"
	"time"
)

// The load balancer API: network load balancers (ELBv2's NLB, with fakecloud IDs instead of
// ARNs), their listeners, target groups of IP targets and the targets' health. Every action is
// admin-only (the account's API, not a node's). Application load balancers share these
// actions and add rules and certificates (alb.go).

// Load balancer action names.
const (
	ActionCreateLoadBalancer           = "CreateLoadBalancer"
	ActionDescribeLoadBalancers        = "DescribeLoadBalancers"
	ActionDeleteLoadBalancer           = "DeleteLoadBalancer"
	ActionModifyLoadBalancerAttributes = "ModifyLoadBalancerAttributes"
	ActionCreateTargetGroup            = "CreateTargetGroup"
	ActionDescribeTargetGroups         = "DescribeTargetGroups"
	ActionModifyTargetGroup            = "ModifyTargetGroup"
	ActionModifyTargetGroupAttributes  = "ModifyTargetGroupAttributes"
	ActionDeleteTargetGroup            = "DeleteTargetGroup"
	ActionRegisterTargets              = "RegisterTargets"
	ActionDeregisterTargets            = "DeregisterTargets"
	ActionDescribeTargetHealth         = "DescribeTargetHealth"
	ActionCreateListener               = "CreateListener"
	ActionDescribeListeners            = "DescribeListeners"
	ActionDeleteListener               = "DeleteListener"
	ActionAddTags                      = "AddTags"
	ActionRemoveTags                   = "RemoveTags"
	ActionDescribeTags                 = "DescribeTags"

	// ActionReportTargetHealth is administrative: the data plane's health checker reports what
	// it saw (never throttled nor faulted, like the other control actions).
	ActionReportTargetHealth = "ReportTargetHealth"
	// ActionReportLoadBalancerState is administrative too: the data plane reports whether it
	// took a load balancer's configuration (active) or could not (failed, with the reason).
	ActionReportLoadBalancerState = "ReportLoadBalancerState"
)

// Load balancer schemes, types and states.
const (
	SchemeInternal          = "internal"
	SchemeInternetFacing    = "internet-facing"
	LoadBalancerTypeNetwork = "network"
)

// Load balancer states, as ELBv2 names them. With a data plane attached a new load balancer
// is provisioning until the data plane has programmed it; it is active only while the data
// plane runs its current configuration, and failed (with StateReason) when the data plane
// could not program it. The data plane keeps retrying a failed one, which turns active by
// itself once the cause is gone. Without a data plane (fakecloud serve --fabric none) there is
// nothing to program and a load balancer is active at once. active_impaired (with StateReason)
// is a load balancer that routes traffic with its current configuration while a part of its
// data plane beside the traffic failed (its access log cannot be written); it too turns active
// by itself once the cause is gone.
const (
	LoadBalancerStateProvisioning   = "provisioning"
	LoadBalancerStateActive         = "active"
	LoadBalancerStateActiveImpaired = "active_impaired"
	LoadBalancerStateFailed         = "failed"
)

// Protocols of listeners, target groups and health checks.
const (
	ProtocolTCP    = "TCP"
	ProtocolUDP    = "UDP"
	ProtocolTCPUDP = "TCP_UDP" // target groups only: one port, both protocols
	ProtocolHTTP   = "HTTP"    // application listeners and target groups, and health checks
)

// TargetTypeIP is the one target type: targets are (IP, port) inside the target group's VPC.
const TargetTypeIP = "ip"

// HealthCheckPortTraffic makes health checks use each target's own port.
const HealthCheckPortTraffic = "traffic-port"

// ActionTypeForward forwards to target groups: the one action type of network listeners
// (alb.go has the others).
const ActionTypeForward = "forward"

// Attribute keys.
const (
	// AttributeSourceRanges (load balancers) is a comma-separated list of IPv4 CIDRs allowed to
	// connect; empty allows everyone. It stands in for the security-group rules of a real NLB.
	AttributeSourceRanges = "source_ranges.cidr_blocks"
	// AttributeAccessLogs (application load balancers) is "true" or "false" (the default):
	// whether the data plane writes a line per request to the load balancer's access log
	// (docs/fakecloud-l7.md). It stands in for a real ALB's access_logs.s3.enabled, without S3.
	AttributeAccessLogs = "access_logs.enabled"
	// AttributeDeregistrationDelay (target groups) is how long, in seconds (0..3600, default
	// 300), a deregistered target stays draining before it is removed.
	AttributeDeregistrationDelay = "deregistration_delay.timeout_seconds"
)

// Target health states.
const (
	TargetHealthInitial     = "initial"
	TargetHealthHealthy     = "healthy"
	TargetHealthUnhealthy   = "unhealthy"
	TargetHealthUnused      = "unused"
	TargetHealthDraining    = "draining"
	TargetHealthUnavailable = "unavailable"
)

// Target health reasons.
const (
	ReasonRegistrationInProgress   = "Elb.RegistrationInProgress"
	ReasonInitialHealthChecking    = "Elb.InitialHealthChecking"
	ReasonResponseCodeMismatch     = "Target.ResponseCodeMismatch"
	ReasonTimeout                  = "Target.Timeout"
	ReasonFailedHealthChecks       = "Target.FailedHealthChecks"
	ReasonNotRegistered            = "Target.NotRegistered"
	ReasonNotInUse                 = "Target.NotInUse"
	ReasonDeregistrationInProgress = "Target.DeregistrationInProgress"
	ReasonHealthCheckDisabled      = "Target.HealthCheckDisabled"
	// ReasonInternalError (state unavailable): the load balancer's data plane failed, so its
	// targets are not checked and cannot be vouched for.
	ReasonInternalError = "Elb.InternalError"
)

// Attribute is one key/value setting of a load balancer or target group.
type Attribute struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// LoadBalancer is a network or application load balancer in one subnet.
type LoadBalancer struct {
	LoadBalancerID   string `json:"LoadBalancerId"`
	LoadBalancerName string `json:"LoadBalancerName"`
	Scheme           string `json:"Scheme"`
	Type             string `json:"Type"`
	// State is provisioning, active or failed (see the LoadBalancerState constants).
	State string `json:"State"`
	// StateReason says why a load balancer is failed (what the data plane could not do).
	StateReason      string `json:"StateReason,omitempty"`
	VpcID            string `json:"VpcId"`
	SubnetID         string `json:"SubnetId"`
	AvailabilityZone string `json:"AvailabilityZone"`
	// PrivateIPAddress is the load balancer's address in its subnet: the VIP of an internal
	// load balancer, and the source address of health checks and forwarded connections.
	PrivateIPAddress string `json:"PrivateIpAddress"`
	// PublicIPAddress is the VIP of an internet-facing load balancer, from 198.51.100.0/24.
	PublicIPAddress string `json:"PublicIpAddress,omitempty"`
	// VIP is the address clients connect to (the public address if any, else the private one).
	VIP string `json:"Vip"`
	// SourceRanges are the CIDRs allowed to connect; empty allows everyone.
	SourceRanges []string `json:"SourceRanges,omitempty"`
	// AccessLogs: the data plane writes the load balancer's access log (AttributeAccessLogs).
	AccessLogs  bool      `json:"AccessLogs,omitempty"`
	CreatedTime time.Time `json:"CreatedTime"`
	Tags        []Tag     `json:"Tags,omitempty"`
}

// HealthCheck says how the data plane probes targets. In requests, zero values take the
// defaults (TCP, traffic-port, 10 s interval, 10 s timeout, 3 healthy, 3 unhealthy; for HTTP
// path "/" and matcher "200-399"). Groups of application load balancers default to their own
// protocol, 15 s interval, 5 s timeout, 2 healthy, 2 unhealthy; GRPC groups to the gRPC health
// service's path and matcher "0-99" (gRPC status codes). TLS groups default to TLS, a TLS
// handshake verifying the target with the group's TLSVerification and presenting its
// ClientCertificateID (TCP the other choice; no path or matcher).
type HealthCheck struct {
	Protocol                string `json:"Protocol,omitempty"` // TCP, HTTP, HTTPS or TLS
	Port                    string `json:"Port,omitempty"`     // "traffic-port" or 1..65535
	Path                    string `json:"Path,omitempty"`     // HTTP only
	IntervalSeconds         int    `json:"IntervalSeconds,omitempty"`
	TimeoutSeconds          int    `json:"TimeoutSeconds,omitempty"`
	HealthyThresholdCount   int    `json:"HealthyThresholdCount,omitempty"`
	UnhealthyThresholdCount int    `json:"UnhealthyThresholdCount,omitempty"`
	// Matcher is the HTTP codes that count as healthy: "200", "200,202" or "200-299" (gRPC
	// status codes 0..99 for GRPC groups).
	Matcher string `json:"Matcher,omitempty"`
}

// TargetGroup is a set of IP targets in one VPC that listeners forward to.
type TargetGroup struct {
	TargetGroupID   string `json:"TargetGroupId"`
	TargetGroupName string `json:"TargetGroupName"`
	Protocol        string `json:"Protocol"`
	// ProtocolVersion is HTTP1, HTTP2 or GRPC for HTTP and HTTPS groups, empty otherwise.
	ProtocolVersion string `json:"ProtocolVersion,omitempty"`
	Port            int    `json:"Port"`
	VpcID           string `json:"VpcId"`
	TargetType      string `json:"TargetType"`
	// LoadBalancerType is the one type of load balancer the group can serve (network for
	// TCP/UDP groups, application for HTTP/HTTPS/TLS ones).
	LoadBalancerType string      `json:"LoadBalancerType"`
	HealthCheck      HealthCheck `json:"HealthCheck"`
	// DeregistrationDelaySeconds is the deregistration_delay.timeout_seconds attribute.
	DeregistrationDelaySeconds int `json:"DeregistrationDelaySeconds"`
	// TLSVerification (fakecloud's own; HTTPS and TLS application groups only) makes the load
	// balancer verify each target's certificate, as Gateway API's BackendTLSPolicy asks.
	// Without it an HTTPS or TLS group's targets are not verified, as ELBv2's. It is set at
	// creation and cannot change.
	TLSVerification *TLSVerification `json:"TlsVerification,omitempty"`
	// ClientCertificateID (fakecloud's own; HTTPS and TLS application groups only) is an imported
	// certificate (ImportCertificate) the load balancer presents to the targets as its TLS client
	// certificate, as Gateway API's spec.tls.backend.clientCertificateRef asks. Set at creation;
	// it cannot change, and the certificate cannot be deleted while a group names it.
	ClientCertificateID string `json:"ClientCertificateId,omitempty"`
	// LoadBalancerIDs are the load balancers whose listeners forward to the group (at most one).
	LoadBalancerIDs []string `json:"LoadBalancerIds"`
	Tags            []Tag    `json:"Tags,omitempty"`
}

// TLSVerification is how the load balancer verifies an HTTPS or TLS group's targets: the chain must
// end at one of CaCertificatesPem's certificates (or, with UseSystemRoots, at the trust store
// of the machine fakecloud runs on; exactly one of the two), and the certificate must hold
// ServerName or, when SubjectAltNames is set, one of those. ServerName is sent as SNI.
type TLSVerification struct {
	ServerName        string           `json:"ServerName"`
	CACertificatesPEM string           `json:"CaCertificatesPem,omitempty"`
	UseSystemRoots    bool             `json:"UseSystemRoots,omitempty"`
	SubjectAltNames   []SubjectAltName `json:"SubjectAltNames,omitempty"`
}

// SubjectAltName is a name a target's certificate may hold: Type Hostname (a DNS name, "*."
// allowed at the front) or URI (an absolute URI).
type SubjectAltName struct {
	Type  string `json:"Type"`
	Value string `json:"Value"`
}

// SubjectAltName types.
const (
	SANTypeHostname = "Hostname"
	SANTypeURI      = "URI"
)

// Action is what a listener or rule does with a connection or request. A network listener
// forwards to one TargetGroupId. An application listener's or rule's action is a forward
// (TargetGroupId, or ForwardConfig for weighted groups), a redirect or a fixed response, with
// the fakecloud extensions Gateway API needs: header modifications (request ones and the rest
// on forwards only), a URL rewrite, request mirrors and timeouts.
type Action struct {
	Type                string                     `json:"Type"`
	TargetGroupID       string                     `json:"TargetGroupId,omitempty"`
	ForwardConfig       *ForwardActionConfig       `json:"ForwardConfig,omitempty"`
	RedirectConfig      *RedirectActionConfig      `json:"RedirectConfig,omitempty"`
	FixedResponseConfig *FixedResponseActionConfig `json:"FixedResponseConfig,omitempty"`

	RequestHeaderModifications  *HeaderModifications  `json:"RequestHeaderModifications,omitempty"`
	ResponseHeaderModifications *HeaderModifications  `json:"ResponseHeaderModifications,omitempty"`
	URLRewriteConfig            *URLRewriteConfig     `json:"UrlRewriteConfig,omitempty"`
	RequestMirrors              []RequestMirrorConfig `json:"RequestMirrors,omitempty"`
	TimeoutConfig               *TimeoutConfig        `json:"TimeoutConfig,omitempty"`
	RetryConfig                 *RetryConfig          `json:"RetryConfig,omitempty"`
	CorsConfig                  *CorsConfig           `json:"CorsConfig,omitempty"`
	// TLSPassthrough (fakecloud's own; a TLS listener's forwards only) passes the connections
	// of the names the rule takes through undecrypted, to targets that end TLS themselves,
	// while a listener with Certificates terminates the rest: terminate and passthrough on one
	// port. On a TLS listener without Certificates everything is passed through anyway.
	TLSPassthrough bool `json:"TlsPassthrough,omitempty"`
}

// Listener accepts connections on a port of a load balancer's VIP.
type Listener struct {
	ListenerID     string   `json:"ListenerId"`
	LoadBalancerID string   `json:"LoadBalancerId"`
	Protocol       string   `json:"Protocol"` // TCP or UDP; HTTP or HTTPS (application)
	Port           int      `json:"Port"`
	DefaultActions []Action `json:"DefaultActions"`
	// SslPolicy and Certificates (the default one first) are an HTTPS listener's.
	SSLPolicy    string                `json:"SslPolicy,omitempty"`
	Certificates []ListenerCertificate `json:"Certificates,omitempty"`
	// HostnameScopes (HTTPS only; fakecloud's own, ELBv2 has none) are hostnames, exact or
	// "*.suffix", each an authority of its own on the listener, as Gateway API listeners that
	// share a port are. A name falls in the most specific scope that matches it (the exact
	// name, else the longest suffix), or in none. A request whose Host falls in another scope
	// than its TLS connection's SNI name is answered 421 Misdirected Request, which makes an
	// HTTP/2 client that reused a connection for another name open one of its own. At most
	// 100, each once.
	HostnameScopes []string `json:"HostnameScopes,omitempty"`
	// MutualAuthentication (HTTPS only; as ELBv2's, with the trust store's CA bundle inline) asks
	// clients for a certificate. Nil: none is asked for.
	MutualAuthentication *MutualAuthentication `json:"MutualAuthentication,omitempty"`
}

// MutualAuthentication is how an HTTPS listener treats client certificates. Mode verify: a
// client must present a certificate whose chain ends at one of CaCertificatesPem's
// certificates, or the handshake fails. Mode passthrough: a client is asked for a certificate
// but none is required or verified (the certificate, if any, is not checked: Gateway API's
// AllowInsecureFallback). CaCertificatesPem is required with verify, optional with passthrough.
type MutualAuthentication struct {
	Mode              string `json:"Mode"`
	CACertificatesPEM string `json:"CaCertificatesPem,omitempty"`
}

// Mutual authentication modes.
const (
	MutualAuthenticationVerify      = "verify"
	MutualAuthenticationPassthrough = "passthrough"
)

// Target is one (IP, port) of a target group. Port 0 in a request means the group's port.
type Target struct {
	IP   string `json:"Ip"`
	Port int    `json:"Port,omitempty"`
}

// TargetHealth is a target's state and, unless healthy, why.
type TargetHealth struct {
	State       string `json:"State"`
	Reason      string `json:"Reason,omitempty"`
	Description string `json:"Description,omitempty"`
}

// TargetHealthDescription is one registered target with its health.
type TargetHealthDescription struct {
	TargetGroupID string       `json:"TargetGroupId"`
	Target        Target       `json:"Target"`
	TargetHealth  TargetHealth `json:"TargetHealth"`
	// DrainDeadline is when a draining target is removed (zero unless draining). Established
	// connections to it may continue until then; new ones must go elsewhere.
	DrainDeadline time.Time `json:"DrainDeadline,omitzero"`
}

// TargetHealthReport is one health-check verdict from the data plane: State is healthy,
// unhealthy, initial or unavailable, with a reason (e.g. Target.Timeout) unless healthy.
type TargetHealthReport struct {
	TargetGroupID string `json:"TargetGroupId"`
	IP            string `json:"Ip"`
	Port          int    `json:"Port"`
	State         string `json:"State"`
	Reason        string `json:"Reason,omitempty"`
	Description   string `json:"Description,omitempty"`
}

// LoadBalancerStateReport is the data plane's verdict on one load balancer: State is
// active or failed, with Reason when failed.
type LoadBalancerStateReport struct {
	LoadBalancerID string `json:"LoadBalancerId"`
	State          string `json:"State"`
	Reason         string `json:"Reason,omitempty"`
}

// TagDescription is the tags of one load balancer or target group.
type TagDescription struct {
	ResourceID string `json:"ResourceId"`
	Tags       []Tag  `json:"Tags"`
}

// --- load balancers

type CreateLoadBalancerRequest struct {
	Name        string `json:"Name"`
	Scheme      string `json:"Scheme,omitempty"` // default internet-facing, as ELBv2
	Type        string `json:"Type,omitempty"`   // default network
	SubnetID    string `json:"SubnetId"`
	Tags        []Tag  `json:"Tags,omitempty"`
	ClientToken string `json:"ClientToken,omitempty"`
	// PublicIpv4Address (internet-facing only) and PrivateIpv4Address ask for the load
	// balancer's addresses instead of letting fakecloud pick (a fakecloud extension, after
	// ELBv2's SubnetMappings: an Elastic IP's AllocationId, a PrivateIPv4Address). The public
	// one must be a free address of the public pool, the private one a free address of the
	// subnet; either refused is AddressUnavailable.
	PublicIPv4Address  string `json:"PublicIpv4Address,omitempty"`
	PrivateIPv4Address string `json:"PrivateIpv4Address,omitempty"`
}
type CreateLoadBalancerResponse struct {
	LoadBalancer LoadBalancer `json:"LoadBalancer"`
}

type DescribeLoadBalancersRequest struct {
	LoadBalancerIDs []string `json:"LoadBalancerIds,omitempty"`
	Names           []string `json:"Names,omitempty"`
	// Filters: vpc-id, scheme, tag:<key>, tag-key.
	Filters []Filter `json:"Filters,omitempty"`
}
type DescribeLoadBalancersResponse struct {
	LoadBalancers []LoadBalancer `json:"LoadBalancers"`
}

type DeleteLoadBalancerRequest struct {
	LoadBalancerID string `json:"LoadBalancerId"`
}
type DeleteLoadBalancerResponse struct{}

type ModifyLoadBalancerAttributesRequest struct {
	LoadBalancerID string      `json:"LoadBalancerId"`
	Attributes     []Attribute `json:"Attributes"`
}
type ModifyLoadBalancerAttributesResponse struct {
	Attributes []Attribute `json:"Attributes"`
}

// --- target groups

type CreateTargetGroupRequest struct {
	Name     string `json:"Name"`
	Protocol string `json:"Protocol"`
	// ProtocolVersion applies to HTTP and HTTPS groups: HTTP1 (default), HTTP2 or GRPC.
	ProtocolVersion string      `json:"ProtocolVersion,omitempty"`
	Port            int         `json:"Port"`
	VpcID           string      `json:"VpcId"`
	TargetType      string      `json:"TargetType,omitempty"` // default ip, the only one
	HealthCheck     HealthCheck `json:"HealthCheck,omitzero"`
	// TLSVerification: see TargetGroup's.
	TLSVerification *TLSVerification `json:"TlsVerification,omitempty"`
	// ClientCertificateID: see TargetGroup's.
	ClientCertificateID string `json:"ClientCertificateId,omitempty"`
	Tags                []Tag  `json:"Tags,omitempty"`
	ClientToken         string `json:"ClientToken,omitempty"`
}
type CreateTargetGroupResponse struct {
	TargetGroup TargetGroup `json:"TargetGroup"`
}

type DescribeTargetGroupsRequest struct {
	TargetGroupIDs []string `json:"TargetGroupIds,omitempty"`
	Names          []string `json:"Names,omitempty"`
	LoadBalancerID string   `json:"LoadBalancerId,omitempty"`
	// Filters: vpc-id, protocol, tag:<key>, tag-key.
	Filters []Filter `json:"Filters,omitempty"`
}
type DescribeTargetGroupsResponse struct {
	TargetGroups []TargetGroup `json:"TargetGroups"`
}

// ModifyTargetGroupRequest changes the health check; zero fields keep their current values.
type ModifyTargetGroupRequest struct {
	TargetGroupID string      `json:"TargetGroupId"`
	HealthCheck   HealthCheck `json:"HealthCheck"`
}
type ModifyTargetGroupResponse struct {
	TargetGroup TargetGroup `json:"TargetGroup"`
}

type ModifyTargetGroupAttributesRequest struct {
	TargetGroupID string      `json:"TargetGroupId"`
	Attributes    []Attribute `json:"Attributes"`
}
type ModifyTargetGroupAttributesResponse struct {
	Attributes []Attribute `json:"Attributes"`
}

type DeleteTargetGroupRequest struct {
	TargetGroupID string `json:"TargetGroupId"`
}
type DeleteTargetGroupResponse struct{}

// --- targets

type RegisterTargetsRequest struct {
	TargetGroupID string   `json:"TargetGroupId"`
	Targets       []Target `json:"Targets"`
}
type RegisterTargetsResponse struct{}

type DeregisterTargetsRequest struct {
	TargetGroupID string   `json:"TargetGroupId"`
	Targets       []Target `json:"Targets"`
}
type DeregisterTargetsResponse struct{}

// DescribeTargetHealthRequest asks for all of a group's targets, or the named ones (a target
// not registered answers unused/Target.NotRegistered).
type DescribeTargetHealthRequest struct {
	TargetGroupID string   `json:"TargetGroupId"`
	Targets       []Target `json:"Targets,omitempty"`
}
type DescribeTargetHealthResponse struct {
	TargetHealthDescriptions []TargetHealthDescription `json:"TargetHealthDescriptions"`
}

// ReportTargetHealthRequest carries health-check verdicts (admin).
type ReportTargetHealthRequest struct {
	Reports []TargetHealthReport `json:"Reports"`
}
type ReportTargetHealthResponse struct{}

// ReportLoadBalancerStateRequest carries the data plane's load balancer states (admin).
type ReportLoadBalancerStateRequest struct {
	Reports []LoadBalancerStateReport `json:"Reports"`
}
type ReportLoadBalancerStateResponse struct{}

// --- listeners

type CreateListenerRequest struct {
	LoadBalancerID string   `json:"LoadBalancerId"`
	Protocol       string   `json:"Protocol"`
	Port           int      `json:"Port"`
	DefaultActions []Action `json:"DefaultActions"`
	// SslPolicy (default SSLPolicyDefault) and Certificates (exactly one, the default) are
	// for HTTPS listeners only.
	SSLPolicy    string                `json:"SslPolicy,omitempty"`
	Certificates []ListenerCertificate `json:"Certificates,omitempty"`
	// HostnameScopes and MutualAuthentication: see Listener.
	HostnameScopes       []string              `json:"HostnameScopes,omitempty"`
	MutualAuthentication *MutualAuthentication `json:"MutualAuthentication,omitempty"`
	ClientToken          string                `json:"ClientToken,omitempty"`
}
type CreateListenerResponse struct {
	Listener Listener `json:"Listener"`
}

// DescribeListenersRequest names either a load balancer or listener IDs.
type DescribeListenersRequest struct {
	LoadBalancerID string   `json:"LoadBalancerId,omitempty"`
	ListenerIDs    []string `json:"ListenerIds,omitempty"`
}
type DescribeListenersResponse struct {
	Listeners []Listener `json:"Listeners"`
}

type DeleteListenerRequest struct {
	ListenerID string `json:"ListenerId"`
}
type DeleteListenerResponse struct{}

// --- tags of load balancers and target groups

type AddTagsRequest struct {
	ResourceIDs []string `json:"ResourceIds"`
	Tags        []Tag    `json:"Tags"`
}
type AddTagsResponse struct{}

type RemoveTagsRequest struct {
	ResourceIDs []string `json:"ResourceIds"`
	TagKeys     []string `json:"TagKeys"`
}
type RemoveTagsResponse struct{}

type DescribeTagsRequest struct {
	ResourceIDs []string `json:"ResourceIds"`
}
type DescribeTagsResponse struct {
	TagDescriptions []TagDescription `json:"TagDescriptions"`
}

// TargetID is the change-stream ID of a target: group, IP and port.
func TargetID(targetGroupID, ip string, port int) string {
	return targetGroupID + "/" + net.JoinHostPort(ip, strconv.Itoa(port))
}

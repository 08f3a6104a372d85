package providers

import (
	"context"
	"net/netip"
	"time"
)

// ApplicationLoadBalancing is what deploying Gateway API's HTTP and HTTPS listeners needs from a
// cloud: application (L7) load balancers with rules and certificates, on top of the target
// groups, targets and deletes of LoadBalancing. It is a separate interface, not more methods
// on LoadBalancing, because a cloud (or a driver, like providers/aws today) may offer network
// load balancers only: consumers ask for it with a type assertion and say so when it is missing.
// The guarantees of LoadBalancing hold here too: creates are idempotent by name and settings
// (and client token), deletes of what is gone succeed, lists select by every tag given.
type ApplicationLoadBalancing interface {
	LoadBalancing
	ApplicationLoadBalancers
	Rules
	Certificates
}

// ApplicationLoadBalancers manages application load balancers and their HTTP/HTTPS listeners.
// LoadBalancing's DeleteLoadBalancer and DeleteListener delete them.
type ApplicationLoadBalancers interface {
	// ListApplicationLoadBalancers returns the application load balancers carrying every tag
	// of tags, with their listeners.
	ListApplicationLoadBalancers(ctx context.Context, tags map[string]string) ([]ApplicationLoadBalancer, error)
	// CreateApplicationLoadBalancer creates one (or answers the existing one of that name).
	CreateApplicationLoadBalancer(ctx context.Context, spec LoadBalancerSpec) (ApplicationLoadBalancer, error)
	// CreateHTTPListener creates an HTTP or HTTPS listener.
	CreateHTTPListener(ctx context.Context, loadBalancerID string, spec HTTPListenerSpec) (HTTPListener, error)
	// ModifyHTTPListener makes a listener match spec: protocol, port, default action and
	// certificates (the extra ones added and removed as needed). ClientToken is unused.
	ModifyHTTPListener(ctx context.Context, listenerID string, spec HTTPListenerSpec) (HTTPListener, error)
}

// Rules manages the rules of an HTTP/HTTPS listener. Rules are evaluated by ascending priority.
type Rules interface {
	// ListRules returns a listener's rules by ascending priority (not its default action).
	ListRules(ctx context.Context, listenerID string) ([]Rule, error)
	// CreateRule adds a rule at a priority no other rule of the listener holds.
	CreateRule(ctx context.Context, listenerID string, spec RuleSpec) (Rule, error)
	// ModifyRule replaces a rule's conditions and action (spec.Priority is unused).
	ModifyRule(ctx context.Context, ruleID string, spec RuleSpec) (Rule, error)
	// DeleteRule deletes a rule; one already gone is done.
	DeleteRule(ctx context.Context, ruleID string) error
	// SetRulePriorities moves rules (rule ID -> priority) all at once, so rules can swap:
	// only the result must keep priorities unique per listener.
	SetRulePriorities(ctx context.Context, priorities map[string]int) error
}

// Certificates manages the TLS certificates HTTPS listeners serve.
type Certificates interface {
	// ListCertificates returns the certificates carrying every tag of tags.
	ListCertificates(ctx context.Context, tags map[string]string) ([]Certificate, error)
	// ImportCertificate uploads a certificate and its key, tagged.
	ImportCertificate(ctx context.Context, spec CertificateSpec) (Certificate, error)
	// DeleteCertificate deletes a certificate no listener serves any more (ErrConflict while
	// one does); one already gone is done.
	DeleteCertificate(ctx context.Context, certificateID string) error
}

// Target group protocol versions of HTTP and HTTPS groups (TargetGroupSpec.ProtocolVersion):
// what the load balancer speaks to the targets. HTTP2 and GRPC over a plain HTTP group are
// HTTP/2 without TLS (h2c); a GRPC group is health checked with the gRPC health service.
const (
	ProtocolVersionHTTP1 = "HTTP1"
	ProtocolVersionHTTP2 = "HTTP2"
	ProtocolVersionGRPC  = "GRPC"
)

// ApplicationLoadBalancer is one application load balancer as the cloud shows it.
type ApplicationLoadBalancer struct {
	ID       string
	Name     string
	Internal bool
	// VIP is the address clients connect to (public for an internet-facing load balancer).
	VIP  netip.Addr
	Tags map[string]string
	// State is LBProvisioning, LBActive or LBFailed (with StateReason): only an active one
	// serves its current configuration.
	State, StateReason string
	Listeners          []HTTPListener
}

// Listener protocols of application load balancers besides HTTP and HTTPS: TLS passthrough
// (rules route by the ClientHello's SNI name; the targets terminate TLS) and TCP (every
// connection to the default forward). Both forward to TCP target groups, with plain weighted
// forwards only; a TLS listener's rules take Hosts conditions only, a TCP listener no rules.
// UDP (fakecloud's extension) relays each client flow's datagrams to its default forward's
// UDP target groups, and takes no rules either. A cloud whose application load balancers
// cannot pass connections through (ELBv2) refuses them with ErrInvalid. A TLS listener's rule
// that terminates TLS (the listener has certificates, the rule does not pass TLS through) may
// also forward to TLS target groups (TargetGroupSpec.Protocol TLS): the load balancer begins
// TLS to the targets again, verified by the group's TLS (Capabilities.BackendTLSVerification).
const (
	ProtocolTLS = "TLS"
	ProtocolTCP = "TCP"
	ProtocolUDP = "UDP"
)

// HTTPListenerSpec is an HTTP, HTTPS, TLS-passthrough or TCP listener to create, or what one
// should be.
type HTTPListenerSpec struct {
	Protocol string // HTTP, HTTPS, TLS, TCP or UDP
	Port     int
	// DefaultAction answers requests no rule matches. A TLS listener's may be empty (no
	// Forward): connections no rule takes are refused. ModifyHTTPListener keeps a default it
	// does not replace.
	DefaultAction RuleAction
	// Certificates (HTTPS only, at least one) are certificate IDs; the first is the default,
	// served when the client's server name matches none of the others'.
	Certificates []string
	// HostnameScopes (HTTPS only; Capabilities.HostnameScopes) are hostnames, exact or
	// "*.suffix", each an authority of its own: a request whose Host falls in another scope
	// (the most specific matching one, or none) than its connection's SNI name gets 421.
	HostnameScopes []string
	// ClientValidation (HTTPS only; Capabilities.FrontendClientValidation) asks clients for a
	// certificate (Gateway API's spec.tls.frontend). Nil: none is asked for.
	ClientValidation *ClientValidation
	ClientToken      string
}

// ClientValidation is how an HTTPS listener treats client certificates: Verify (false: a
// certificate is asked for but neither required nor checked, Gateway API's
// AllowInsecureFallback), against the roots of CAPEM (PEM; required with Verify).
type ClientValidation struct {
	Verify bool
	CAPEM  []byte
}

// HTTPListener is one HTTP or HTTPS listener.
type HTTPListener struct {
	ID            string
	Protocol      string
	Port          int
	DefaultAction RuleAction
	// Certificates: the default first, then the others sorted.
	Certificates []string
	// HostnameScopes as set (lowercase).
	HostnameScopes []string
	// ClientValidation as set.
	ClientValidation *ClientValidation
}

// RuleSpec is a rule to create, or what a rule should become.
type RuleSpec struct {
	Priority    int // 1..50000
	Conditions  RuleConditions
	Action      RuleAction
	ClientToken string
}

// Rule is one rule of a listener.
type Rule struct {
	ID         string
	Priority   int
	Conditions RuleConditions
	Action     RuleAction
}

// RuleConditions must all hold for a rule to match; an empty field matches everything.
type RuleConditions struct {
	// Hosts: the Host header equals one of them (case-insensitive), or for "*.suffix" ends in
	// ".suffix".
	Hosts []string
	// Path: Exact, Prefix (whole segments) or Regex (RE2, whole path).
	Path *StringMatch
	// Method: the request method, upper case.
	Method string
	// Headers (names case-insensitive) and Query parameters must all match: Exact or Regex.
	Headers []StringMatch
	Query   []StringMatch
}

// StringMatch compares a path, header or query parameter (Name) with Value: MatchExact,
// MatchPrefix (paths only) or MatchRegex.
type StringMatch struct {
	Name  string
	Type  string
	Value string
}

// Alternatives splits a regex at its top-level |s (outside groups and classes, not escaped): a
// cloud whose conditions are lists of OR'd patterns (ELBv2's header values) holds one each.
func Alternatives(re string) []string {
	var out []string
	depth, class, start := 0, false, 0
	for i := 0; i < len(re); i++ {
		switch c := re[i]; {
		case c == '\\':
			i++
		case class:
			class = c != ']'
		case c == '[':
			class = true
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == '|' && depth == 0:
			out = append(out, re[start:i])
			start = i + 1
		}
	}
	return append(out, re[start:])
}

// Match types of rule conditions and path modifier types.
const (
	MatchExact         = "Exact"
	MatchPrefix        = "Prefix"
	MatchRegex         = "Regex"
	ReplaceFullPath    = "ReplaceFullPath"
	ReplacePrefixMatch = "ReplacePrefixMatch"
)

// RuleAction is what a rule (or a listener by default) does with a request: exactly one of
// Forward, Redirect and FixedResponse, with header changes, and for Forward only a rewrite,
// mirrors and timeouts.
type RuleAction struct {
	Forward       []WeightedTargetGroup
	Redirect      *Redirect
	FixedResponse *FixedResponse

	RequestHeaders  *HeaderModifier
	ResponseHeaders *HeaderModifier
	Rewrite         *Rewrite
	Mirrors         []Mirror
	// RequestTimeout bounds the whole exchange, BackendTimeout the exchange with the target
	// (each try, with Retry); zero: no bound.
	RequestTimeout, BackendTimeout time.Duration
	// Retry sends the request again when its target failed it (fakecloud's extension; ELBv2
	// has none, and the AWS driver refuses it with ErrInvalid).
	Retry *Retry
	// CORS is the rule's cross-origin policy, on any action (fakecloud's extension; ELBv2 has
	// none, and the AWS driver refuses it with ErrInvalid).
	CORS *CORS
	// TLSPassthrough (a TLS listener's forwards only) passes the connections of the names the
	// rule takes through undecrypted, while a listener with certificates terminates the rest:
	// Gateway API's TLS listeners of both modes on one port (fakecloud's extension; the AWS
	// driver refuses it with ErrInvalid).
	TLSPassthrough bool
}

// CORS answers CORS preflights at the load balancer and marks the rule's answers to allowed
// origins (Gateway API's HTTPRoute CORS filter): AllowOrigins are "*" or scheme://host[:port]
// (the host exact or "*." and a domain); AllowMethods, AllowHeaders and ExposeHeaders names or
// "*"; MaxAge how long a browser may keep a preflight's answer (zero: 5 s).
type CORS struct {
	AllowOrigins     []string
	AllowMethods     []string
	AllowHeaders     []string
	ExposeHeaders    []string
	AllowCredentials bool
	MaxAge           time.Duration
}

// Retry is a forward's retry policy: a try answered with one of Codes (400-599), or not answered
// at all, is made again on another pick of the group's targets, at most Attempts (1-10) times,
// each at least Backoff (at most a minute) after the last failed.
type Retry struct {
	Codes    []int
	Attempts int
	Backoff  time.Duration
}

// WeightedTargetGroup is a share (Weight 0..999) of a forward's requests, with header changes
// for the requests sent to this group.
type WeightedTargetGroup struct {
	TargetGroupID   string
	Weight          int
	RequestHeaders  *HeaderModifier
	ResponseHeaders *HeaderModifier
}

// Redirect answers with a redirect built from the request; empty fields (port 0) keep the
// request's value.
type Redirect struct {
	Scheme     string // HTTP or HTTPS
	Host       string
	Port       int
	Path       *PathModifier
	StatusCode int // 301, 302, 303, 307 or 308
}

// PathModifier replaces the whole path (ReplaceFullPath) or the prefix the rule's Prefix path
// condition matched (ReplacePrefixMatch) with Value.
type PathModifier struct {
	Type  string
	Value string
}

// FixedResponse answers without a backend; Body is text/plain.
type FixedResponse struct {
	StatusCode int
	Body       string
}

// HeaderModifier changes headers: Set replaces, Add appends, Remove deletes.
type HeaderModifier struct {
	Set    []Header
	Add    []Header
	Remove []string
}

// Header is a header name and value.
type Header struct {
	Name  string
	Value string
}

// Rewrite changes a forwarded request's Host header and/or path.
type Rewrite struct {
	Host string
	Path *PathModifier
}

// Mirror sends a copy of Percent (0..100) of the forwarded requests to a target group.
type Mirror struct {
	TargetGroupID string
	Percent       float64
}

// CertificateSpec is a certificate to import: PEM leaf (optionally followed by its chain) and
// PEM private key, tagged so that its owner finds it again and collects it when unused.
type CertificateSpec struct {
	CertificatePEM []byte
	PrivateKeyPEM  []byte
	Tags           map[string]string
	ClientToken    string
}

// Certificate is an imported certificate: never its key.
type Certificate struct {
	ID       string
	DNSNames []string
	NotAfter time.Time
	Tags     map[string]string
	// InUseBy are the listeners serving it.
	InUseBy []string
}

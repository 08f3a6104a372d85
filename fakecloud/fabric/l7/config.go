package l7

import (
	"net/netip"
	"reflect"
	"slices"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// Config is the data-plane form of one application load balancer: its listeners, each with rules
// in evaluation order, and the target groups the rules forward to. It is plain data; Apply
// validates it and never keeps a reference to it.
type Config struct {
	Listeners    []Listener
	TargetGroups []TargetGroup
}

// Protocol is a listener's or a target group's protocol.
type Protocol string

const (
	ProtocolHTTP  Protocol = "HTTP"  // listeners: HTTP/1.1 and h2c by prior knowledge; targets: HTTP/1.1
	ProtocolHTTPS Protocol = "HTTPS" // listeners: TLS with ALPN h2 and http/1.1; targets: TLS, h2 when offered
	ProtocolH2C   Protocol = "H2C"   // targets only: HTTP/2 without TLS (gRPC backends)
	// ProtocolTLS listeners pass TLS through: the SNI name of the client's ClientHello picks
	// the rule (Hosts only; a rule without Hosts takes any name, and a ClientHello without
	// one), and the connection is spliced to a TCP target, the ClientHello replayed. A
	// connection no rule matches is closed. With Certificates, a TLS listener terminates TLS
	// instead (the SNI name picks the certificate, as on HTTPS, and the rule) and splices the
	// decrypted stream to the target: TLS for any protocol over TCP, as ELBv2's network load
	// balancers' TLS listeners; a rule whose action is TLSPassthrough still passes its names'
	// connections through (terminate and passthrough on one port, Gateway API's mixed mode).
	// ProtocolTLS target groups take that decrypted stream encrypted again: the engine dials
	// the target, makes a TLS handshake with it as the group's TLS says (verification, client
	// certificate) and splices the stream into that (re-encryption, Gateway API's
	// BackendTLSPolicy for a TLSRoute of mode Terminate). Only a terminating TLS listener's
	// rules that do not pass TLS through forward to them.
	ProtocolTLS Protocol = "TLS"
	// ProtocolTCP listeners splice every connection to a target of their one rule (no Hosts);
	// TCP target groups are what TLS and TCP listeners forward to.
	ProtocolTCP Protocol = "TCP"
	// ProtocolUDP listeners relay datagrams by flow (the client's address and port) to a
	// target of their one rule (no Hosts), chosen when the flow's first datagram comes; UDP
	// target groups are what they forward to (see Options.UDPIdleTimeout).
	ProtocolUDP Protocol = "UDP"
)

// Listener is one port of the load balancer. Port is the port clients connect to; it is what
// X-Forwarded-Port and redirects report, whatever address the listen function binds.
type Listener struct {
	Port         int
	Protocol     Protocol
	Certificates []Certificate // HTTPS, and TLS to terminate; chosen by SNI
	// HostnameScopes (HTTPS only) are hostnames, exact or "*.suffix", each an authority of its
	// own on the port, as Gateway API listeners sharing a port are. A name falls in the most
	// specific scope that matches it (its exact name, else the longest suffix), or in none. A
	// request whose Host falls in another scope than its connection's SNI name is answered 421
	// Misdirected Request (RFC 9110 section 15.5.20), which tells a client that reused a
	// connection for another name (HTTP/2 connection coalescing) to open one of its own.
	// Connections without an SNI name are not checked. Empty: no check.
	HostnameScopes []string
	// ClientAuth (HTTPS only), when set, asks clients for a certificate in the handshake. A
	// new ClientAuth applies to the handshakes after Apply took it; connections made before
	// keep theirs, and their requests in flight finish.
	ClientAuth *ClientAuth
	// Rules are evaluated in this order and the first whose conditions all hold serves the
	// request; a request no rule matches gets 404.
	Rules []Rule
}

// ClientAuth is how an HTTPS listener treats client certificates (mutual TLS with clients).
// Verify: a client must present a certificate whose chain ends at one of CAPEM's
// certificates, or its handshake fails. Otherwise a certificate is asked for but neither
// required nor verified, and CAPEM, if any, only names the acceptable issuers to clients.
// Validate refuses a CAPEM that holds no certificate, and Verify without one.
type ClientAuth struct {
	Verify bool
	CAPEM  []byte
}

// Certificate is a PEM certificate chain and key served on an HTTPS listener. Hostnames are the
// SNI names it answers, exact ("www.example.com") or wildcard ("*.example.com", any name ending in
// ".example.com", as Gateway API listener hostnames match); when empty, the certificate's DNS
// names. A ClientHello picks the exact name first, then the longest wildcard, then the Default
// certificate (or the first one).
type Certificate struct {
	Name      string
	CertPEM   []byte
	KeyPEM    []byte
	Hostnames []string
	Default   bool
}

// Rule is one match (all its conditions ANDed) and the action it takes. A Gateway API rule with
// several matches becomes several Rules, so the controller can order matches across routes as the
// spec's precedence demands.
type Rule struct {
	// Name labels the rule in metrics and the access log.
	Name string
	// Revision, when set with Name, names this content of the rule: the caller promises that
	// every rule it gives an engine with this Name and Revision, in this Apply or a later one,
	// is equal to this one. The engine then compiles it once and reuses the compilation while
	// it stays in the configuration (a change to one rule among a thousand compiles one), and
	// Config.Equal takes such rules as equal without comparing them. Empty: compiled every time.
	Revision string
	// Hosts are the Host values the rule serves (any of them; none: any host). Exact names
	// compare case-insensitively; "*.example.com" matches any name ending in ".example.com".
	Hosts   []string
	Path    *PathMatch
	Headers []HeaderMatch // all must hold; names case-insensitive
	Query   []QueryMatch  // all must hold; names case-sensitive, the first value of a name counts
	Method  string        // empty: any method
	Action  Action
}

// MatchType says how a condition compares its value.
type MatchType string

const (
	MatchExact  MatchType = "Exact"
	MatchPrefix MatchType = "Prefix" // paths only: whole path segments, a trailing "/" ignored
	MatchRegex  MatchType = "Regex"  // RE2, matched against the whole value
)

// PathMatch compares the request's escaped path.
type PathMatch struct {
	Type  MatchType
	Value string
}

// HeaderMatch compares a request header; repeated headers are joined with ",".
type HeaderMatch struct {
	Name  string
	Type  MatchType // Exact or Regex
	Value string
}

// QueryMatch compares a query parameter.
type QueryMatch struct {
	Name  string
	Type  MatchType // Exact or Regex
	Value string
}

// Action is what a matched rule does: exactly one of Forward, Redirect and FixedResponse, with
// the modifiers that apply to it.
type Action struct {
	Forward       *Forward
	Redirect      *Redirect
	FixedResponse *FixedResponse

	RequestHeaders  HeaderEdit // on the request forwarded (and mirrored)
	ResponseHeaders HeaderEdit // on every response the rule sends
	Rewrite         *Rewrite   // Forward only
	Mirrors         []Mirror   // Forward only
	Timeouts        Timeouts   // Forward only
	Retry           *Retry     // Forward only
	// Transforms (Forward only, at most one of each type) rewrite the request after the rule
	// matched and before Rewrite and the header edits: ELBv2's rule transforms. A url-rewrite
	// and Rewrite.Path (a host-header-rewrite and Rewrite.Hostname) are not taken together.
	Transforms []Transform
	// CORS, when set, answers CORS preflights itself and marks the rule's answers to allowed
	// origins (Gateway API's HTTPRoute CORS filter).
	CORS *CORS
	// TLSPassthrough (TLS listeners only) passes the rule's connections through undecrypted,
	// ClientHello replayed, on a listener whose Certificates terminate the others' (no
	// Certificates: every connection is passed through anyway).
	TLSPassthrough bool
}

// CORS is a rule's cross-origin policy (the Fetch standard's CORS protocol). A preflight (an
// OPTIONS request with an Origin and an Access-Control-Request-Method) is answered by the load
// balancer, never forwarded: 204 with Access-Control-Allow-Origin (the request's origin),
// -Methods (the list; with "*", the method asked for), -Headers (the list; with "*", the
// headers asked for), -Expose-Headers, -Max-Age and, with AllowCredentials,
// -Allow-Credentials: true, when the origin is allowed; 403 without them when it is not. Any
// other answer of the rule to a request from an allowed origin gets Access-Control-Allow-Origin
// (the origin), -Expose-Headers and -Allow-Credentials, replacing the target's; every answer to
// a request with an Origin gets Vary: Origin.
type CORS struct {
	// AllowOrigins are "*" (any origin), or scheme://host[:port] where the host is exact or
	// "*." and a domain (one or more labels before it); compared case-insensitively, the port
	// exactly (none matches none).
	AllowOrigins     []string
	AllowMethods     []string // method names, or "*"
	AllowHeaders     []string // header names, or "*"
	ExposeHeaders    []string // header names, or "*"
	AllowCredentials bool
	MaxAge           int // seconds a preflight's answer may be cached: 1-86400; 0: 5
}

// Retry sends a forwarded request again when its target failed it (Gateway API's
// HTTPRouteRetry): when the answer's status is one of Codes, or when no answer came (the target
// could not be reached, closed or reset the connection, or took longer than
// Timeouts.BackendRequest, which bounds each try). At most Attempts tries follow the first,
// each at least Backoff after the last one failed and to a target of the same backend's group
// picked afresh (round robin); the client gets the last answer, or the last
// failure's 502 or 504. Timeouts.Request bounds the tries and the waits together: a retry that
// cannot start before it ends is not made. A request is retried only when its body can be sent
// again: it has none, or a Content-Length of at most 64 KiB, which the engine then holds until
// the request ends; larger and chunked bodies, requests that expect 100 Continue and WebSocket
// upgrades are tried once.
type Retry struct {
	Codes    []int         // 400-599, each once; none: only failures without an answer are retried
	Attempts int           // 1-10
	Backoff  time.Duration // 0-60 s
}

// Forward sends the request to one of its backends, chosen at random in proportion to weight.
// A backend with weight 0 is never chosen. A backend naming no target group is an invalid one
// (Gateway API: a backendRef that does not resolve): its share of requests gets 500, as do all
// requests when every weight is 0.
type Forward struct {
	Backends []Backend
}

// Backend is a weighted target group with the header changes of its own (Gateway API backendRef
// filters), applied after the rule's.
type Backend struct {
	TargetGroup     string
	Weight          int
	RequestHeaders  HeaderEdit
	ResponseHeaders HeaderEdit
}

// HeaderEdit changes headers: Set replaces, Add appends a value, Remove deletes, in that order.
type HeaderEdit struct {
	Set    []Header
	Add    []Header
	Remove []string
}

// Header is a header name and value.
type Header struct{ Name, Value string }

// PathModifierType says how a redirect or rewrite changes the path.
type PathModifierType string

const (
	// ReplaceFullPath replaces the whole path.
	ReplaceFullPath PathModifierType = "ReplaceFullPath"
	// ReplacePrefixMatch replaces the segments the rule's Prefix path match matched (the rule
	// must have one), with Gateway API's trailing-slash rules.
	ReplacePrefixMatch PathModifierType = "ReplacePrefixMatch"
)

// PathModifier changes the path of a redirect or a forwarded request.
type PathModifier struct {
	Type  PathModifierType
	Value string
}

// Redirect answers with a Location built from the request and these overrides. Port 0 derives
// the port as Gateway API says: the scheme's well-known port when Scheme is set, else the
// listener's; 80 for http and 443 for https are left out of the Location.
type Redirect struct {
	Scheme     string // "http", "https" or empty: the request's
	Hostname   string // empty: the request's host
	Port       int
	Path       *PathModifier // nil: the request's path
	StatusCode int           // 301, 302, 303, 307 or 308; 0 means 302
}

// Rewrite changes the forwarded request's Host and path.
type Rewrite struct {
	Hostname string
	Path     *PathModifier
}

// TransformType says what a Transform rewrites.
type TransformType string

const (
	// TransformHost rewrites the Host header, as the request gave it (its port included).
	TransformHost TransformType = "host-header-rewrite"
	// TransformURL rewrites the URL: the escaped path, then "?" and the query when the query
	// is not empty. The result is split again at its first "?".
	TransformURL TransformType = "url-rewrite"
)

// Transform replaces the first (leftmost) match of Regex (RE2) with Replace, in which $n and
// ${n} are group n of the match (n is every digit after the $: "$1x" is group 1 then "x"; an
// unmatched group is empty) and $$ is a $. No match leaves the request as it is. A result
// that is not a Host (empty, or a character outside letters, digits and -._~!$&'()*+,;=:[]%),
// or a URL whose path does not begin with "/" or does not unescape, or that holds a space, a
// control or non-ASCII character or a "#", is answered 500.
type Transform struct {
	Type    TransformType
	Regex   string
	Replace string
}

// FixedResponse answers without a backend.
type FixedResponse struct {
	StatusCode  int
	ContentType string
	Body        string
}

// Mirror sends a copy of Percent (0-100) percent of the forwarded requests to a target group and
// ignores its responses. A request body is mirrored when it is at most 1 MiB.
type Mirror struct {
	TargetGroup string
	Percent     float64
}

// Timeouts bound a forwarded request; zero means none. Request covers the whole exchange from
// the request's arrival to the end of the response; BackendRequest covers the exchange with the
// target. Either running out answers 504 when no response has started.
type Timeouts struct {
	Request        time.Duration
	BackendRequest time.Duration
}

// TargetGroup is a set of IP targets and the protocol to speak to them.
type TargetGroup struct {
	Name     string
	Protocol Protocol    // HTTP, HTTPS, H2C, TLS, TCP or UDP
	TLS      *BackendTLS // HTTPS (nil: verified against the system's roots) and TLS (required)
	Targets  []Target
}

// BackendTLS is how the engine verifies an HTTPS or TLS target, and the certificate it
// presents. A TLS group's handshake offers no ALPN (the stream it carries is the client's,
// whatever that speaks).
type BackendTLS struct {
	ServerName string // SNI and, without SubjectAltNames, the name verified; empty: the target's IP
	CAPEM      []byte // roots; empty: the system's
	// SubjectAltNames, when set, replace ServerName in the check: the chain is verified
	// against the roots and the certificate must hold one of these names.
	SubjectAltNames    []SubjectAltName
	InsecureSkipVerify bool
	// ClientCertPEM (leaf first, then its chain) and ClientKeyPEM, when set, are the client
	// certificate the engine presents to targets that ask for one (mTLS to the targets),
	// verified or not. Validate refuses a pair that does not parse.
	ClientCertPEM []byte
	ClientKeyPEM  []byte
}

// SubjectAltName is a name an HTTPS or TLS target's certificate may hold.
type SubjectAltName struct {
	Type  SANType
	Value string // SANHostname: a DNS name, "*." allowed at the front (matched as written); SANURI: an absolute URI
}

// SANType is the type of a SubjectAltName.
type SANType string

const (
	// SANHostname matches a DNS name of the certificate as Go's VerifyHostname does (the
	// certificate's wildcards included); a value beginning "*." matches that very name.
	SANHostname SANType = "Hostname"
	// SANURI matches a URI of the certificate exactly (a SPIFFE ID, say).
	SANURI SANType = "URI"
)

// TargetState is a target's health state, named as the network load balancer's (fakecloud/api).
type TargetState string

const (
	StateInitial     TargetState = api.TargetHealthInitial
	StateHealthy     TargetState = api.TargetHealthHealthy
	StateUnhealthy   TargetState = api.TargetHealthUnhealthy
	StateDraining    TargetState = api.TargetHealthDraining
	StateUnused      TargetState = api.TargetHealthUnused
	StateUnavailable TargetState = api.TargetHealthUnavailable
)

// Target is one ip:port and its state. New requests go to healthy targets; when a group has
// none, to its initial and unhealthy ones (fail open, as an ELB does); never to draining, unused
// or unavailable targets, whose requests in flight run to completion.
type Target struct {
	Addr  netip.AddrPort
	State TargetState
}

// Equal reports whether a and b are the same configuration. Two rules with the same Name and
// a non-empty Revision are taken as equal (Rule.Revision's promise); everything else is
// compared in full.
func (a Config) Equal(b Config) bool {
	if len(a.Listeners) != len(b.Listeners) || !reflect.DeepEqual(a.TargetGroups, b.TargetGroups) {
		return false
	}
	for i := range a.Listeners {
		la, lb := &a.Listeners[i], &b.Listeners[i]
		if la.Port != lb.Port || la.Protocol != lb.Protocol || len(la.Rules) != len(lb.Rules) ||
			!slices.Equal(la.HostnameScopes, lb.HostnameScopes) || !reflect.DeepEqual(la.Certificates, lb.Certificates) ||
			!reflect.DeepEqual(la.ClientAuth, lb.ClientAuth) {
			return false
		}
		for j := range la.Rules {
			ra, rb := &la.Rules[j], &lb.Rules[j]
			if ra.Revision != "" && ra.Name != "" && ra.Name == rb.Name && ra.Revision == rb.Revision {
				continue
			}
			if !reflect.DeepEqual(*ra, *rb) {
				return false
			}
		}
	}
	return true
}

package gateway

import (
	"github.com/flatnet/flatnet/lbcontroller/model"
)

// Listener and target group protocols of the load balancer model.
const (
	ProtocolHTTP  = "HTTP"
	ProtocolHTTPS = "HTTPS"
	ProtocolTCP   = "TCP"
	ProtocolUDP   = "UDP"
	// ProtocolTLS is a network listener that routes TLS connections by their SNI without
	// terminating them (Gateway API TLS passthrough), or terminating them (mode Terminate);
	// as a target group's protocol, TCP to the targets with TLS begun by the load balancer and
	// verified as a BackendTLSPolicy says (a TLSRoute's backend behind a listener that
	// terminates).
	ProtocolTLS = "TLS"
	// ProtocolH2C is a target group spoken to in HTTP/2 without TLS (gRPC backends).
	ProtocolH2C = "H2C"
	// ProtocolGRPCS is a target group of gRPC backends spoken to over TLS (a gRPC backend that
	// a BackendTLSPolicy targets).
	ProtocolGRPCS = "GRPCS"
)

// Path and string match types of rule conditions.
const (
	MatchExact  = "Exact"
	MatchPrefix = "Prefix"
	MatchRegex  = "Regex" // RE2 syntax, as Go's regexp, matching the whole value
)

// Path modifier types of redirects and rewrites.
const (
	ReplaceFullPath    = "ReplaceFullPath"
	ReplacePrefixMatch = "ReplacePrefixMatch"
)

// GatewayLoadBalancers is what one Gateway needs from the cloud: an application load balancer
// for its HTTP, HTTPS, TLS-passthrough, TCP and UDP listeners (one address for all of them),
// nil when the Gateway has no valid listener.
type GatewayLoadBalancers struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
	// L7 is the application load balancer: HTTP and HTTPS listeners, and TLS-passthrough,
	// TCP and UDP listeners passing connections and datagrams through (Passthrough).
	L7 *ApplicationLoadBalancer `json:"l7,omitempty"`
	// Hold (with no L7): the Gateway asks for addresses it cannot have (its Programmed
	// condition says why); whatever of it the cloud serves stays as it is, neither changed nor
	// deleted, until the Gateway asks for what it can have.
	Hold bool `json:"hold,omitempty"`
}

// ApplicationLoadBalancer terminates HTTP (and TLS for HTTPS) and routes each request by its rules.
type ApplicationLoadBalancer struct {
	// Name is stable for the Gateway's UID (and its static address).
	Name string `json:"name"`
	// Address is the static address the Gateway asks for (its VIP: public when the load
	// balancer is internet-facing); "" lets the cloud assign one.
	Address string `json:"address,omitempty"`
	// Tags are the Gateway's spec.infrastructure.labels the cloud can take as tags
	// (model.UserTagProblem), for its load balancers, target groups and certificates.
	Tags      map[string]string `json:"tags,omitempty"`
	Listeners []HTTPListener    `json:"listeners"`
	// BackendClientCertificate is the certificate the load balancer presents to the targets of
	// its TLS groups (the Gateway's spec.tls.backend.clientCertificateRef); nil: none.
	BackendClientCertificate *Certificate `json:"backendClientCertificate,omitempty"`
	// Passthrough are the TLS-passthrough, TCP and UDP listeners, which pass connections (UDP:
	// each client flow's datagrams) through without terminating them (a TLS listener routes by
	// the ClientHello's SNI name), sorted by port; none shares a port with Listeners or
	// another Passthrough listener.
	Passthrough []L4Listener `json:"passthrough,omitempty"`
	// TargetGroups are every group a rule forwards or mirrors to, sorted by name.
	TargetGroups []TargetGroup `json:"targetGroups,omitempty"`
}

// HTTPListener is one port of the application load balancer. All Gateway listeners on the port
// (distinct by hostname) are merged into it: their certificates, selected by SNI, and their
// rules, in one precedence order.
type HTTPListener struct {
	Port     int    `json:"port"`
	Protocol string `json:"protocol"` // HTTP or HTTPS
	// Certificates are offered by SNI (HTTPS only): the first whose Hostnames match the
	// client's server name, most specific listener hostname first; one with no Hostnames is
	// the default for any name.
	Certificates []Certificate `json:"certificates,omitempty"`
	// HostnameScopes (HTTPS only) are the hostnames of the Gateway listeners on the port, most
	// specific first: a request whose Host falls in another Gateway listener than its
	// connection's SNI name gets 421 Misdirected Request (GatewayHTTPSListenerDetectMisdirectedRequests).
	// A name no scope matches falls to the listener without a hostname. Deploy drops them for
	// a cloud without providers.Capabilities.HostnameScopes.
	HostnameScopes []string `json:"hostnameScopes,omitempty"`
	// ClientValidation (HTTPS only) asks clients for a certificate: the Gateway's
	// spec.tls.frontend for the port. Nil: none is asked for.
	ClientValidation *ClientValidation `json:"clientValidation,omitempty"`
	// Rules in evaluation order: the first whose conditions all hold answers the request.
	// Priority is the rule's 1-based position. A request no rule matches gets 404.
	Rules []Rule `json:"rules"`
}

// ClientValidation is how an HTTPS listener treats client certificates: with Verify a client
// must present one whose chain ends at CAPEM's certificates (AllowValidOnly); without, one is
// asked for but neither required nor checked (AllowInsecureFallback).
type ClientValidation struct {
	Verify bool   `json:"verify,omitempty"`
	CAPEM  string `json:"caPEM"`
}

// Certificate is a TLS certificate chain and key from a kubernetes.io/tls Secret.
type Certificate struct {
	// Hostnames the certificate is served for: the Gateway listener's hostname (exact or
	// "*.suffix"); empty for a listener without a hostname, whose certificates are Default.
	Hostnames []string `json:"hostnames,omitempty"`
	// Default certificates answer a server name no other certificate's Hostnames match.
	Default bool `json:"default,omitempty"`
	// Secret is namespace/name of the Secret it came from.
	Secret string `json:"secret"`
	// Fingerprint is the SHA-256 of the leaf certificate (DER), hex: the identity of what is
	// uploaded, so a deploy step can tell whether a certificate changed.
	Fingerprint string `json:"fingerprint"`
	// CertPEM and KeyPEM are the Secret's tls.crt and tls.key. They never appear in the
	// model's JSON, so printing or diffing a model cannot leak a key.
	CertPEM []byte `json:"-"`
	KeyPEM  []byte `json:"-"`
}

// Rule is one match of one route rule: conditions that must all hold and what to do then.
type Rule struct {
	Priority int `json:"priority"`
	// Source names where the rule came from: "HTTPRoute ns/name rule 0 match 1" (or the
	// rule's name when it has one), or the listener for the fallback 404 rules.
	Source     string     `json:"source"`
	Conditions Conditions `json:"conditions"`
	Action     Action     `json:"action"`
}

// Conditions of a rule; an empty field matches everything. Regular expressions are RE2 (Go's
// regexp) and must match the whole value (path, header or query parameter), not a part of it.
type Conditions struct {
	// Hosts: the request's Host (without port) equals one of them, or for "*.suffix" ends in
	// ".suffix" (any number of labels before it).
	Hosts   []string      `json:"hosts,omitempty"`
	Path    *PathMatch    `json:"path,omitempty"`
	Method  string        `json:"method,omitempty"`
	Headers []StringMatch `json:"headers,omitempty"` // names case-insensitive
	Query   []StringMatch `json:"query,omitempty"`   // names case-sensitive
}

// PathMatch matches the request path: Exact, Prefix (whole path segments: "/foo" matches
// "/foo" and "/foo/bar", not "/foobar") or Regex.
type PathMatch struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// StringMatch matches a header or query parameter value, Exact or Regex.
type StringMatch struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Action of a rule: exactly one of Forward, Redirect or FixedResponse, with header changes on
// the request and on the response, and, for Forward only, a rewrite, mirrors and timeouts
// (the vocabulary of fakecloud/fabric/l7's Action).
type Action struct {
	RequestHeaders  *HeaderModifier `json:"requestHeaders,omitempty"`
	ResponseHeaders *HeaderModifier `json:"responseHeaders,omitempty"`
	Rewrite         *Rewrite        `json:"rewrite,omitempty"`
	Mirrors         []Mirror        `json:"mirrors,omitempty"`
	Redirect        *Redirect       `json:"redirect,omitempty"`
	FixedResponse   *FixedResponse  `json:"fixedResponse,omitempty"`
	Forward         *Forward        `json:"forward,omitempty"`
	Timeouts        *Timeouts       `json:"timeouts,omitempty"`
	Retry           *Retry          `json:"retry,omitempty"`
	CORS            *CORS           `json:"cors,omitempty"`
}

// CORS is an HTTPRoute rule's CORS filter: the load balancer answers preflights and marks the
// rule's answers to allowed origins. MaxAge is in seconds (0: the default, 5).
type CORS struct {
	AllowOrigins     []string `json:"allowOrigins"`
	AllowMethods     []string `json:"allowMethods,omitempty"`
	AllowHeaders     []string `json:"allowHeaders,omitempty"`
	ExposeHeaders    []string `json:"exposeHeaders,omitempty"`
	AllowCredentials bool     `json:"allowCredentials,omitempty"`
	MaxAge           int      `json:"maxAge,omitempty"`
}

// HeaderModifier changes headers: Set replaces (or adds), Add appends, Remove deletes. Header
// names are case-insensitive.
type HeaderModifier struct {
	Set    []Header `json:"set,omitempty"`
	Add    []Header `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// Header is a header name and value.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Rewrite changes the request before it is forwarded: the Host header and/or the path
// (ReplaceFullPath, or ReplacePrefixMatch of the rule's prefix path condition).
type Rewrite struct {
	Hostname string        `json:"hostname,omitempty"`
	Path     *PathModifier `json:"path,omitempty"`
}

// PathModifier replaces the full path or the matched prefix with Value.
type PathModifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Redirect answers with a redirect built from the request: each empty field keeps the
// request's value. Port 0 is derived as the Gateway API says: the scheme's well-known port when
// Scheme is set, otherwise the listener's port (80 for http and 443 for https are left out of
// the Location).
type Redirect struct {
	Scheme     string        `json:"scheme,omitempty"`
	Hostname   string        `json:"hostname,omitempty"`
	Port       int           `json:"port,omitempty"`
	Path       *PathModifier `json:"path,omitempty"`
	StatusCode int           `json:"statusCode"`
}

// FixedResponse answers with a status code and no upstream.
type FixedResponse struct {
	StatusCode int    `json:"statusCode"`
	Body       string `json:"body,omitempty"`
}

// Forward sends the request to one of Backends, picked at random in proportion to the weights.
type Forward struct {
	Backends []WeightedBackend `json:"backends"`
}

// WeightedBackend is a share of the traffic to TargetGroup. A backend without a TargetGroup
// stands for a backend reference that could not be resolved: its share is answered with 500
// on an application load balancer (as the Gateway API requires) and refused on a network one.
// Header changes here apply only to requests sent to this backend, after the rule's.
type WeightedBackend struct {
	TargetGroup     string          `json:"targetGroup,omitempty"`
	Weight          int             `json:"weight"`
	RequestHeaders  *HeaderModifier `json:"requestHeaders,omitempty"`
	ResponseHeaders *HeaderModifier `json:"responseHeaders,omitempty"`
}

// Mirror sends a copy of Percent of the requests to TargetGroup and ignores its answers.
type Mirror struct {
	TargetGroup string  `json:"targetGroup"`
	Percent     float64 `json:"percent"`
}

// Timeouts in Go duration syntax ("10s"); empty is none. Request bounds the whole request,
// BackendRequest each attempt at a backend.
type Timeouts struct {
	Request        string `json:"request,omitempty"`
	BackendRequest string `json:"backendRequest,omitempty"`
}

// Retry sends a forwarded request again when its backend failed it: answered with one of Codes,
// or not at all; at most Attempts times, each at least Backoff (Go duration syntax; empty: none)
// after the last failure.
type Retry struct {
	Codes    []int  `json:"codes,omitempty"`
	Attempts int    `json:"attempts"`
	Backoff  string `json:"backoff,omitempty"`
}

// L4Listener is one port and transport passed through: a TLS-passthrough, TCP or UDP listener
// of the application load balancer. TCP and UDP listeners
// have Default only; a TLS listener has SNI routes (most specific name first) and, when a route
// matches every name, Default.
type L4Listener struct {
	Port     int        `json:"port"`
	Protocol string     `json:"protocol"` // TCP, UDP or TLS
	SNI      []SNIRoute `json:"sni,omitempty"`
	// Certificates (TLS only) make the listener terminate TLS (TLSRoute mode Terminate): chosen
	// by SNI as an HTTPS listener's, the decrypted stream is what the targets get. None: TLS
	// is passed through.
	Certificates []Certificate `json:"certificates,omitempty"`
	// Default takes connections no SNI route claims; nil: they are refused.
	Default *Forward `json:"default,omitempty"`
	// DefaultPassthrough: Default's connections are passed through although the listener has
	// Certificates (a Gateway listener in mode Passthrough beside ones in mode Terminate).
	DefaultPassthrough bool `json:"defaultPassthrough,omitempty"`
	// DefaultSource is the route whose forward Default is (its rule's Source).
	DefaultSource string `json:"defaultSource,omitempty"`
	// RouteOrder is the Sources of the usable routes attached to the port's listeners, oldest
	// first (creationTimestamp, then namespace/name: the Gateway API's conflict order), for a
	// cloud whose listener forwards to one backend and must choose a route (deploy.SplitGateway).
	RouteOrder []string `json:"routeOrder,omitempty"`
}

// SNIRoute sends TLS connections whose server name matches one of Hostnames (exact or
// "*.suffix") to Forward; the first SNIRoute that matches decides. A nil Forward refuses the
// connection: it closes a listener hostname no route serves, so that its connections never
// reach a less specific listener's routes.
type SNIRoute struct {
	Hostnames []string `json:"hostnames"`
	Source    string   `json:"source"`
	Forward   *Forward `json:"forward,omitempty"` // nil: refused
	// Passthrough: the route's connections are passed through undecrypted although the
	// listener has Certificates (a Gateway listener in mode Passthrough sharing the port with
	// ones in mode Terminate: TLSRouteModeMixed).
	Passthrough bool `json:"passthrough,omitempty"`
}

// TargetGroup is the pod endpoints of one Service port, as the backends of a load balancer.
type TargetGroup struct {
	// Name is stable for the Gateway, Service, port and protocol.
	Name string `json:"name"`
	// Service is namespace/name; Port the Service port the route named.
	Service  string `json:"service"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"` // HTTP, HTTPS, H2C, GRPCS, TCP or UDP
	// TLS (HTTPS and GRPCS groups) says how the load balancer verifies the targets'
	// certificates (a BackendTLSPolicy); nil: it does not (a Service port of appProtocol
	// https). The group's name covers it: other settings make another group.
	TLS *BackendTLS `json:"tls,omitempty"`
	// ClientCertificate (HTTPS and GRPCS groups) is the Fingerprint of the ApplicationLoadBalancer's
	// BackendClientCertificate, which the load balancer presents to the targets; "" for none.
	ClientCertificate string `json:"clientCertificate,omitempty"`
	// Targets take new requests and connections; Draining are serving but terminating
	// endpoints, left to finish (see lbcontroller/model.Endpoints).
	Targets  []model.Target `json:"targets"`
	Draining []model.Target `json:"draining,omitempty"`
}

// BackendTLS is how the load balancer verifies a target group's targets (BackendTLSPolicy's
// validation): the certificate chain ends at CAPEM's certificates (or, with SystemRoots, at the
// cloud's trust store) and holds ServerName, or one of SubjectAltNames when there are any.
// ServerName is the SNI.
type BackendTLS struct {
	ServerName      string           `json:"serverName"`
	CAPEM           string           `json:"caPEM,omitempty"`
	SystemRoots     bool             `json:"systemRoots,omitempty"`
	SubjectAltNames []SubjectAltName `json:"subjectAltNames,omitempty"`
}

// SubjectAltName is a name the target's certificate may hold.
type SubjectAltName struct {
	Type  string `json:"type"` // SANHostname or SANURI
	Value string `json:"value"`
}

// Subject alternative name types.
const (
	SANHostname = "Hostname"
	SANURI      = "URI"
)

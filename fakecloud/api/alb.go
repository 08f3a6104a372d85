package api

import "time"

// The application load balancer API: ELBv2's ALB control plane (HTTP and HTTPS listeners, rules
// with priorities, conditions and actions, certificates for TLS termination), with the
// extensions Gateway API needs (path match types, header and URL rewrites, request mirrors,
// timeouts). Like the network API, every action is admin-only.

// Application load balancer action names.
const (
	ActionModifyListener             = "ModifyListener"
	ActionCreateRule                 = "CreateRule"
	ActionModifyRule                 = "ModifyRule"
	ActionDeleteRule                 = "DeleteRule"
	ActionDescribeRules              = "DescribeRules"
	ActionSetRulePriorities          = "SetRulePriorities"
	ActionImportCertificate          = "ImportCertificate"
	ActionDescribeCertificates       = "DescribeCertificates"
	ActionDeleteCertificate          = "DeleteCertificate"
	ActionAddListenerCertificates    = "AddListenerCertificates"
	ActionRemoveListenerCertificates = "RemoveListenerCertificates"
)

// LoadBalancerTypeApplication is an HTTP/HTTPS load balancer with rules.
const LoadBalancerTypeApplication = "application"

// ProtocolHTTPS is the protocol of TLS-terminating listeners and of target groups whose
// targets speak TLS; ProtocolHTTP (lb.go) is plain HTTP.
const ProtocolHTTPS = "HTTPS"

// ProtocolTLS is the protocol of an application load balancer's TLS-passthrough listeners (a
// fakecloud extension): they read the client's ClientHello without terminating TLS, pick the
// first rule whose host-header condition matches its SNI server name (a ClientHello without
// one goes to the default), and splice the connection to a TCP target group's target. Such a
// listener holds no certificate; its rules take host-header conditions and forward actions
// only; with no DefaultActions, connections no rule matches are refused. An application load
// balancer's TCP listeners (ProtocolTCP) forward every connection to their default forward's
// TCP target groups and take no rules. Given Certificates, a TLS listener terminates TLS
// instead, and its forwards that do not pass TLS through (Action.TLSPassthrough) may name
// TLS target groups: groups of Protocol TLS, whose targets the load balancer speaks TLS to
// (verified by the group's TLSVerification, presenting its ClientCertificateID), the
// decrypted stream encrypted again. No other listener or action can forward to a TLS group.
const ProtocolTLS = "TLS"

// Protocol versions of HTTP and HTTPS target groups: what the load balancer speaks to targets.
// HTTP2 and GRPC over a plain HTTP group are HTTP/2 without TLS (h2c), a fakecloud extension.
const (
	ProtocolVersionHTTP1 = "HTTP1"
	ProtocolVersionHTTP2 = "HTTP2"
	ProtocolVersionGRPC  = "GRPC"
)

// Action types besides forward.
const (
	ActionTypeRedirect      = "redirect"
	ActionTypeFixedResponse = "fixed-response"
)

// Rule condition fields.
const (
	ConditionHostHeader        = "host-header"
	ConditionPathPattern       = "path-pattern"
	ConditionHTTPHeader        = "http-header"
	ConditionQueryString       = "query-string"
	ConditionHTTPRequestMethod = "http-request-method"
)

// Match types of path, header and query conditions (a fakecloud extension, named as Gateway
// API names them). Prefix applies to paths only and matches whole segments: "/foo" matches
// "/foo", "/foo/" and "/foo/bar", not "/foobar". Regex is RE2 and must match the whole value.
const (
	MatchTypeExact  = "Exact"
	MatchTypePrefix = "Prefix"
	MatchTypeRegex  = "Regex"
)

// Path modification types of redirects and URL rewrites (a fakecloud extension).
// ReplacePrefixMatch needs a path-pattern condition of type Prefix on the rule.
const (
	PathReplaceFull        = "ReplaceFullPath"
	PathReplacePrefixMatch = "ReplacePrefixMatch"
)

// Redirect status codes, as ELBv2 spells them.
const (
	RedirectHTTP301 = "HTTP_301"
	RedirectHTTP302 = "HTTP_302"
	RedirectHTTP303 = "HTTP_303"
	RedirectHTTP307 = "HTTP_307"
	RedirectHTTP308 = "HTTP_308"
)

// SSL policies an HTTPS listener accepts; the default is SSLPolicyDefault. The data plane maps
// each to the TLS versions it allows (SSLPolicyMinTLS).
const (
	SSLPolicyDefault        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
	SSLPolicyTLS13Only      = "ELBSecurityPolicy-TLS13-1-3-2021-06"
	SSLPolicyTLS12          = "ELBSecurityPolicy-TLS-1-2-2017-01"
	SSLPolicyLegacy         = "ELBSecurityPolicy-2016-08"
	SSLPolicyForwardSecrecy = "ELBSecurityPolicy-FS-1-2-Res-2020-10"
)

// SSLPolicyMinTLS is the lowest TLS version ("1.0", "1.2", "1.3") each SSL policy allows.
var SSLPolicyMinTLS = map[string]string{
	SSLPolicyDefault:        "1.2",
	SSLPolicyTLS13Only:      "1.3",
	SSLPolicyTLS12:          "1.2",
	SSLPolicyLegacy:         "1.0",
	SSLPolicyForwardSecrecy: "1.2",
}

// RuleCondition is one condition of a rule: Field names it and the matching config holds its
// values (any of which may match). A rule matches when all its conditions do.
type RuleCondition struct {
	Field                   string                            `json:"Field"`
	HostHeaderConfig        *HostHeaderConditionConfig        `json:"HostHeaderConfig,omitempty"`
	PathPatternConfig       *PathPatternConditionConfig       `json:"PathPatternConfig,omitempty"`
	HTTPHeaderConfig        *HTTPHeaderConditionConfig        `json:"HttpHeaderConfig,omitempty"`
	QueryStringConfig       *QueryStringConditionConfig       `json:"QueryStringConfig,omitempty"`
	HTTPRequestMethodConfig *HTTPRequestMethodConditionConfig `json:"HttpRequestMethodConfig,omitempty"`
}

// HostHeaderConditionConfig: host names, exact ("www.example.com", case-insensitive) or with a
// leading wildcard label ("*.example.com": any name ending in ".example.com").
type HostHeaderConditionConfig struct {
	Values []string `json:"Values"`
}

// PathPatternConditionConfig: paths compared as MatchType says (Exact by default).
type PathPatternConditionConfig struct {
	Values    []string `json:"Values"`
	MatchType string   `json:"MatchType,omitempty"`
}

// HTTPHeaderConditionConfig: the named header's value (repeated headers joined with ",")
// equals, or with MatchType Regex matches, one of the values.
type HTTPHeaderConditionConfig struct {
	HTTPHeaderName string   `json:"HttpHeaderName"`
	Values         []string `json:"Values"`
	MatchType      string   `json:"MatchType,omitempty"`
}

// QueryStringConditionConfig: one of the key/value pairs is in the query string (the first
// value of a key counts). Unlike ELBv2, every pair names its key.
type QueryStringConditionConfig struct {
	Values    []QueryStringKeyValue `json:"Values"`
	MatchType string                `json:"MatchType,omitempty"`
}

// QueryStringKeyValue is one query parameter to look for.
type QueryStringKeyValue struct {
	Key   string `json:"Key,omitempty"`
	Value string `json:"Value"`
}

// HTTPRequestMethodConditionConfig: the request's method is one of the values (upper case).
type HTTPRequestMethodConditionConfig struct {
	Values []string `json:"Values"`
}

// ForwardActionConfig spreads requests over target groups in proportion to their weights.
type ForwardActionConfig struct {
	TargetGroups []TargetGroupTuple `json:"TargetGroups"`
}

// TargetGroupTuple is one weighted target group of a forward action. Weight is 0..999 (nil: 1);
// a group with weight 0 gets no requests. The header modifications apply to requests sent to
// this group and its responses, after the action's own (Gateway API's backendRef filters).
type TargetGroupTuple struct {
	TargetGroupID               string               `json:"TargetGroupId"`
	Weight                      *int                 `json:"Weight,omitempty"`
	RequestHeaderModifications  *HeaderModifications `json:"RequestHeaderModifications,omitempty"`
	ResponseHeaderModifications *HeaderModifications `json:"ResponseHeaderModifications,omitempty"`
}

// RedirectActionConfig answers with a redirect built from the request and these overrides;
// an empty field (or ELBv2's "#{protocol}", "#{host}", "/#{path}", "#{query}" placeholders)
// keeps the request's value. Port 0 keeps the port (ELBv2's "#{port}").
type RedirectActionConfig struct {
	Protocol string `json:"Protocol,omitempty"` // HTTP or HTTPS
	Host     string `json:"Host,omitempty"`
	Port     int    `json:"Port,omitempty"`
	// Path replaces the whole path; PathModification (an extension) replaces it or the prefix
	// the rule's Prefix path condition matched. At most one of them.
	Path             string            `json:"Path,omitempty"`
	PathModification *PathModification `json:"PathModification,omitempty"`
	Query            string            `json:"Query,omitempty"`
	StatusCode       string            `json:"StatusCode"` // HTTP_301, HTTP_302, HTTP_303, HTTP_307 or HTTP_308
}

// PathModification changes a redirect's or a forwarded request's path.
type PathModification struct {
	Type  string `json:"Type"` // ReplaceFullPath or ReplacePrefixMatch
	Value string `json:"Value"`
}

// FixedResponseActionConfig answers without a backend.
type FixedResponseActionConfig struct {
	StatusCode  string `json:"StatusCode"` // "200".."299", "400".."599"
	ContentType string `json:"ContentType,omitempty"`
	MessageBody string `json:"MessageBody,omitempty"` // at most 1024 bytes
}

// HeaderModifications change headers: Set replaces a header's values, Add appends one,
// Remove deletes the header; applied in that order.
type HeaderModifications struct {
	Set    []HTTPHeader `json:"Set,omitempty"`
	Add    []HTTPHeader `json:"Add,omitempty"`
	Remove []string     `json:"Remove,omitempty"`
}

// HTTPHeader is a header name and value.
type HTTPHeader struct {
	Name  string `json:"Name"`
	Value string `json:"Value"`
}

// URLRewriteConfig changes the Host and path of a forwarded request.
type URLRewriteConfig struct {
	Host             string            `json:"Host,omitempty"`
	PathModification *PathModification `json:"PathModification,omitempty"`
}

// RequestMirrorConfig sends a copy of Percent (0..100, nil: 100) percent of the forwarded
// requests to a target group and ignores its answers.
type RequestMirrorConfig struct {
	TargetGroupID string   `json:"TargetGroupId"`
	Percent       *float64 `json:"Percent,omitempty"`
}

// TimeoutConfig bounds a forwarded request (0: no bound): RequestMillis the whole exchange,
// BackendRequestMillis the exchange with the target (at most RequestMillis when both are set).
type TimeoutConfig struct {
	RequestMillis        int `json:"RequestMillis,omitempty"`
	BackendRequestMillis int `json:"BackendRequestMillis,omitempty"`
}

// RetryConfig (fakecloud's own; ELBv2 has none) sends a forwarded request again when its target
// failed it: answered with one of Codes (400-599, each once; none: only failures without an
// answer), or gave no answer (not reachable, reset or closed the connection, or took longer than
// TimeoutConfig.BackendRequestMillis, which then bounds each try). At most Attempts (1-10) tries
// follow the first, each at least BackoffMillis (0-60000) after the last failed, to a target of
// the same group picked afresh; TimeoutConfig.RequestMillis bounds them all. Requests with a body
// over 64 KiB, a chunked one, or Expect: 100-continue are tried once.
type RetryConfig struct {
	Codes         []int `json:"Codes,omitempty"`
	Attempts      int   `json:"Attempts"`
	BackoffMillis int   `json:"BackoffMillis,omitempty"`
}

// CorsConfig (fakecloud's own; ELBv2 has none) is a rule's cross-origin policy, on any action
// of an HTTP or HTTPS listener. The load balancer answers CORS preflights (OPTIONS with Origin
// and Access-Control-Request-Method) itself: 204 with the policy's Access-Control-* headers
// when the origin is allowed, 403 when it is not; every other answer of the rule to an allowed
// origin gets Access-Control-Allow-Origin (the origin), -Expose-Headers and, with
// AllowCredentials, -Allow-Credentials. AllowOrigins (1-64) are "*" or scheme://host[:port],
// the host exact or "*." and a domain (any number of labels before it); AllowMethods (methods,
// or "*"), AllowHeaders and ExposeHeaders (header names, or "*") at most 64 each; MaxAgeSeconds
// 0-86400 (0: 5).
type CorsConfig struct {
	AllowOrigins     []string `json:"AllowOrigins"`
	AllowMethods     []string `json:"AllowMethods,omitempty"`
	AllowHeaders     []string `json:"AllowHeaders,omitempty"`
	ExposeHeaders    []string `json:"ExposeHeaders,omitempty"`
	AllowCredentials bool     `json:"AllowCredentials,omitempty"`
	MaxAgeSeconds    int      `json:"MaxAgeSeconds,omitempty"`
}

// ListenerCertificate names an imported certificate; IsDefault marks the one served
// when no other matches the client's SNI name.
type ListenerCertificate struct {
	CertificateID string `json:"CertificateId"`
	IsDefault     bool   `json:"IsDefault,omitempty"`
}

// Rule is one rule of an HTTP or HTTPS listener. Rules are evaluated by ascending Priority
// and the first whose conditions all hold serves the request; the default rule (IsDefault,
// the listener's default actions, no conditions) comes last.
type Rule struct {
	RuleID         string          `json:"RuleId"`
	ListenerID     string          `json:"ListenerId"`
	LoadBalancerID string          `json:"LoadBalancerId"`
	Priority       int             `json:"Priority,omitempty"` // 1..50000; 0 for the default rule
	IsDefault      bool            `json:"IsDefault,omitempty"`
	Conditions     []RuleCondition `json:"Conditions"`
	Actions        []Action        `json:"Actions"`
	Transforms     []RuleTransform `json:"Transforms,omitempty"`
}

// Rule transform types, as ELBv2 spells them.
const (
	TransformTypeHostHeaderRewrite = "host-header-rewrite"
	TransformTypeURLRewrite        = "url-rewrite"
)

// RuleTransform is ELBv2's rewrite of a request a rule forwards, made after the rule matched
// (the routing decision stands) and before the action's own rewrite and header changes:
// host-header-rewrite rewrites the Host header, url-rewrite the request URL (its path, with
// "?" and the query when it has one). Its one rewrite replaces the first match of Regex (RE2,
// at most 1024 characters) with Replace (at most 1024; $1 or ${1} is a group of the match, $$
// a literal $). No match leaves the request as it is; a result that is not a valid host, or a
// URL whose path does not start with "/", is answered 500. A rule has at most one transform of
// each type, and only a rule that forwards; a listener's default rule has none.
type RuleTransform struct {
	Type                    string         `json:"Type"`
	HostHeaderRewriteConfig *RewriteConfig `json:"HostHeaderRewriteConfig,omitempty"` // host-header-rewrite only
	URLRewriteConfig        *RewriteConfig `json:"UrlRewriteConfig,omitempty"`        // url-rewrite only
}

// RewriteConfig holds a transform's rewrites: exactly one, as in ELBv2.
type RewriteConfig struct {
	Rewrites []RegexRewrite `json:"Rewrites"`
}

// RegexRewrite replaces the first match of Regex with Replace.
type RegexRewrite struct {
	Regex   string `json:"Regex"`
	Replace string `json:"Replace"`
}

// Certificate is an imported certificate as describes show it: never the private key.
type Certificate struct {
	CertificateID           string    `json:"CertificateId"`
	DomainName              string    `json:"DomainName"`
	SubjectAlternativeNames []string  `json:"SubjectAlternativeNames,omitempty"`
	Issuer                  string    `json:"Issuer"`
	Serial                  string    `json:"Serial"`
	KeyAlgorithm            string    `json:"KeyAlgorithm"`
	NotBefore               time.Time `json:"NotBefore"`
	NotAfter                time.Time `json:"NotAfter"`
	ImportedAt              time.Time `json:"ImportedAt"`
	// CertificatePem is the leaf and CertificateChainPem the intermediates (public).
	CertificatePem      string `json:"CertificatePem"`
	CertificateChainPem string `json:"CertificateChainPem,omitempty"`
	// InUseBy are the listeners serving the certificate and the target groups presenting it
	// to their targets (ClientCertificateId).
	InUseBy []string `json:"InUseBy"`
	Tags    []Tag    `json:"Tags,omitempty"`
}

// CertificateKeyPair is a certificate with its private key, for the data plane only: no API
// action answers it; in-process the fabric reads it with (*state.Store).CertificateKeyPair.
type CertificateKeyPair struct {
	CertificateID string `json:"CertificateId"`
	// CertificatePem is the leaf followed by the chain, as a TLS server sends it.
	CertificatePem string `json:"CertificatePem"`
	PrivateKeyPem  string `json:"PrivateKeyPem"`
	// DNSNames are the names the certificate is valid for (SANs, or the subject's CN).
	DNSNames []string `json:"DnsNames"`
}

// --- listeners

// ModifyListenerRequest changes a listener; fields left empty keep their values. Certificates
// replaces the default certificate (exactly one, HTTPS only); AddListenerCertificates manages
// the others.
type ModifyListenerRequest struct {
	ListenerID     string                `json:"ListenerId"`
	Port           int                   `json:"Port,omitempty"`
	Protocol       string                `json:"Protocol,omitempty"`
	DefaultActions []Action              `json:"DefaultActions,omitempty"`
	SSLPolicy      string                `json:"SslPolicy,omitempty"`
	Certificates   []ListenerCertificate `json:"Certificates,omitempty"`
	// HostnameScopes replaces the listener's (see Listener) when present; [] removes them.
	HostnameScopes *[]string `json:"HostnameScopes,omitempty"`
	// MutualAuthentication replaces the listener's (see Listener) when present; one of Mode
	// "off" removes it.
	MutualAuthentication *MutualAuthentication `json:"MutualAuthentication,omitempty"`
}
type ModifyListenerResponse struct {
	Listener Listener `json:"Listener"`
}

type AddListenerCertificatesRequest struct {
	ListenerID   string                `json:"ListenerId"`
	Certificates []ListenerCertificate `json:"Certificates"`
}
type AddListenerCertificatesResponse struct {
	Certificates []ListenerCertificate `json:"Certificates"`
}

type RemoveListenerCertificatesRequest struct {
	ListenerID   string                `json:"ListenerId"`
	Certificates []ListenerCertificate `json:"Certificates"`
}
type RemoveListenerCertificatesResponse struct{}

// --- rules

type CreateRuleRequest struct {
	ListenerID  string          `json:"ListenerId"`
	Priority    int             `json:"Priority"`
	Conditions  []RuleCondition `json:"Conditions"`
	Actions     []Action        `json:"Actions"`
	Transforms  []RuleTransform `json:"Transforms,omitempty"`
	ClientToken string          `json:"ClientToken,omitempty"`
}
type CreateRuleResponse struct {
	Rule Rule `json:"Rule"`
}

// ModifyRuleRequest replaces the conditions, the actions, the transforms, or several (an empty
// list keeps them); ResetTransforms removes the rule's transforms (not with Transforms).
type ModifyRuleRequest struct {
	RuleID          string          `json:"RuleId"`
	Conditions      []RuleCondition `json:"Conditions,omitempty"`
	Actions         []Action        `json:"Actions,omitempty"`
	Transforms      []RuleTransform `json:"Transforms,omitempty"`
	ResetTransforms bool            `json:"ResetTransforms,omitempty"`
}
type ModifyRuleResponse struct {
	Rule Rule `json:"Rule"`
}

type DeleteRuleRequest struct {
	RuleID string `json:"RuleId"`
}
type DeleteRuleResponse struct{}

// DescribeRulesRequest names a listener (its rules by priority, then its default rule) or
// rule IDs, not both.
type DescribeRulesRequest struct {
	ListenerID string   `json:"ListenerId,omitempty"`
	RuleIDs    []string `json:"RuleIds,omitempty"`
}
type DescribeRulesResponse struct {
	Rules []Rule `json:"Rules"`
}

// RulePriorityPair is one rule's new priority.
type RulePriorityPair struct {
	RuleID   string `json:"RuleId"`
	Priority int    `json:"Priority"`
}

// SetRulePrioritiesRequest changes priorities all at once, so rules can swap.
type SetRulePrioritiesRequest struct {
	RulePriorities []RulePriorityPair `json:"RulePriorities"`
}
type SetRulePrioritiesResponse struct {
	Rules []Rule `json:"Rules"`
}

// --- certificates

// ImportCertificateRequest imports a PEM certificate (the leaf, optionally followed by its
// chain), an optional separate PEM chain, and the leaf's PEM private key.
type ImportCertificateRequest struct {
	Certificate      string `json:"Certificate"`
	CertificateChain string `json:"CertificateChain,omitempty"`
	PrivateKey       string `json:"PrivateKey"`
	Tags             []Tag  `json:"Tags,omitempty"`
	ClientToken      string `json:"ClientToken,omitempty"`
}
type ImportCertificateResponse struct {
	Certificate Certificate `json:"Certificate"`
}

type DescribeCertificatesRequest struct {
	CertificateIDs []string `json:"CertificateIds,omitempty"`
}
type DescribeCertificatesResponse struct {
	Certificates []Certificate `json:"Certificates"`
}

type DeleteCertificateRequest struct {
	CertificateID string `json:"CertificateId"`
}
type DeleteCertificateResponse struct{}

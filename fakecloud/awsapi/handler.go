package awsapi

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/awsapi/creds"
	"github.com/flatnet/flatnet/fakecloud/awsapi/query"
	"github.com/flatnet/flatnet/fakecloud/awsapi/sigv4"
)

// MaxBodyBytes caps a request body, as fakecloud's JSON API does.
const MaxBodyBytes = 1 << 20

// Principal is who signed a request: the administrator's key, or one instance's credentials.
type Principal struct {
	Admin      bool
	InstanceID string
	// LoadBalancer is the load-balancer principal (Config.LoadBalancerKey), TokenID its token.
	LoadBalancer bool
	TokenID      string
}

// Call is one AWS request on its way to the backend.
type Call struct {
	RequestID string
	// Service is "ec2", "elbv2" or "acm".
	Service string
	// Action is the fakecloud action the request maps to; empty until it is known.
	Action    string
	Principal Principal
	// Request is the fakecloud request (*api.XxxRequest) to carry out.
	Request any
	// Injected is set by the backend when its answer is an injected fault.
	Injected bool
}

// Backend carries out fakecloud actions. fakecloud's server implements it with its JSON API's
// pipeline, so that both protocols are authorized, throttled, faulted, measured and logged alike.
type Backend interface {
	// Do carries out c.Request as c.Action for c.Principal.
	Do(ctx context.Context, c *Call) (any, error)
	// Done records one answered request (metrics, log), whether or not Do ran.
	Done(c *Call, status int, err error, took time.Duration)
	// Names returns the names of load balancers and target groups by ID, for their ARNs;
	// gone ones are left out. It is an internal read: no throttling, no faults.
	Names(ids []string) map[string]string
	// HealthCheck returns a target group's health check (false: no such group), for
	// ModifyTargetGroup's settings left unchanged. An internal read, like Names.
	HealthCheck(targetGroupID string) (api.HealthCheck, bool)
}

// Config configures a Handler. Backend and InstanceToken are required.
type Config struct {
	Backend Backend
	// AdminKeys are the long-term key pairs of the administrator.
	AdminKeys []creds.Key
	// LoadBalancerKey returns a load-balancer token's key pair by its access key ID, and the
	// token's ID: the load-balancer principal, allowed the ELBv2 and ACM actions and the reads a
	// load balancer controller needs (the backend decides). Nil: there is none.
	LoadBalancerKey func(accessKeyID string) (creds.Key, string, bool)
	// InstanceToken returns a running instance's fakecloud token, from which its AWS
	// credentials derive (creds.InstanceKey).
	InstanceToken func(instanceID string) (string, bool)
	// Clock is the time signatures are checked at; default time.Now.
	Clock func() time.Time
	// MaxSkew is how far a signature's timestamp may be from Clock; default 15 minutes.
	MaxSkew time.Duration
}

// Handler serves the AWS protocols. Create it with New.
type Handler struct {
	cfg      Config
	services map[string]*service // by API version
	bySigner map[string]*service // by SigV4 signing name
	// acm answers the JSON protocol (X-Amz-Target), apart from the Query services.
	acm *service
}

// New returns a Handler for cfg.
func New(cfg Config) (*Handler, error) {
	if cfg.Backend == nil || cfg.InstanceToken == nil {
		return nil, errors.New("awsapi config: a backend and an instance token lookup are required")
	}
	for _, k := range cfg.AdminKeys {
		if k.AccessKeyID == "" || k.SecretAccessKey == "" || creds.IsInstanceKeyID(k.AccessKeyID) {
			return nil, fmt.Errorf("awsapi config: admin key %q needs an ID (not of an instance's shape) and a secret", k.AccessKeyID)
		}
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = sigv4.DefaultMaxSkew
	}
	h := &Handler{cfg: cfg, services: map[string]*service{}, bySigner: map[string]*service{}, acm: acmService()}
	for _, s := range services() {
		h.services[s.version] = s
		h.bySigner[s.signingName] = s
	}
	return h, nil
}

// services are the AWS APIs served.
func services() []*service { return []*service{ec2Service(), elbv2Service()} }

// Match reports whether r is for the AWS front end: a request to "/" that is signed with SigV4
// (header or presigned query), or form-encoded, or names an Action in its query string, or
// (the JSON protocol, ACM's) an X-Amz-Target.
// fakecloud's JSON API lives under /api/, its health and metrics at /healthz and /metrics, so
// the two never claim the same request; an unsigned AWS-shaped request is answered by the AWS
// front end, in AWS's shape, with MissingAuthenticationToken.
func Match(r *http.Request) bool {
	if r.URL.Path != "/" {
		return false
	}
	if sigv4.Present(r) || isJSONTarget(r) {
		return true
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded" || r.URL.Query().Has("Action")
}

// exchange is one request's progress through the handler.
type exchange struct {
	ctx    context.Context
	h      *Handler
	call   *Call
	svc    *service
	params *query.Params
	dryRun bool
	// awsAction is the action the request names, once known.
	awsAction string
	// region is the one the request is signed for; fakecloud has no regions and takes any.
	region string
}

// ServeHTTP answers one AWS request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isJSONTarget(r) {
		h.serveJSON(w, r)
		return
	}
	start := time.Now()
	x := &exchange{ctx: r.Context(), h: h, call: &Call{RequestID: newRequestID()}, svc: h.services[ec2Version]}
	w.Header().Set("X-Amzn-Requestid", x.call.RequestID)
	w.Header().Set(api.HeaderRequestID, x.call.RequestID)
	body, err := x.serve(w, r)
	x.call.Service = x.svc.name
	status := x.svc.answer(w, x.call.RequestID, x.awsAction, body, err)
	h.cfg.Backend.Done(x.call, status, err, time.Since(start))
}

// serve runs the request: read, pick the service, authenticate, dispatch. It returns the XML
// body of the answer or the error to answer.
func (x *exchange) serve(w http.ResponseWriter, r *http.Request) (any, error) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		return nil, statusErr(http.StatusMethodNotAllowed, api.CodeInvalidRequest, "method %s is not allowed: AWS Query requests are POST (or GET) to /", r.Method)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, statusErr(http.StatusRequestEntityTooLarge, api.CodeInvalidRequest, "the request body is over %d bytes", MaxBodyBytes)
		}
		return nil, api.Errorf(api.CodeInvalidRequest, "cannot read the request body: %v", err)
	}
	if len(body) > 0 {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
			return nil, api.Errorf(api.CodeInvalidRequest, "the body is %q; fakecloud serves the AWS Query protocol (EC2, ELBv2): send application/x-www-form-urlencoded", truncate(r.Header.Get("Content-Type"), 60))
		}
	}
	params, perr := query.Parse(string(body), r.URL.RawQuery, isSignatureParam)
	if params != nil {
		version, _ := params.Root().String("Version")
		x.pickService(version, r)
	} else {
		x.pickService("", r)
	}
	p, region, err := x.h.authenticate(r, body, x.svc)
	if err != nil {
		return nil, err
	}
	x.call.Principal, x.region = p, region
	if perr != nil {
		return nil, queryError(perr)
	}
	x.params = params
	return x.dispatch()
}

// pickService chooses whose protocol answers: by the API version the request names, else by the
// service its signature is scoped to, else EC2.
func (x *exchange) pickService(version string, r *http.Request) {
	if s := x.h.services[version]; s != nil {
		x.svc = s
		return
	}
	if sig, err := sigv4.Parse(r); err == nil && x.h.bySigner[sig.Scope.Service] != nil {
		x.svc = x.h.bySigner[sig.Scope.Service]
	}
}

// dispatch checks the version and runs the action.
func (x *exchange) dispatch() (any, error) {
	root := x.params.Root()
	version, ok := root.String("Version")
	if !ok || version == "" {
		return nil, api.Errorf(api.CodeMissingParameter, "the request must contain the parameter Version (%s for %s)", x.svc.version, x.svc.title)
	}
	if version != x.svc.version {
		var served []string
		for _, s := range services() {
			served = append(served, s.title+" "+s.version)
		}
		return nil, api.Errorf(x.svc.code(api.CodeInvalidParameterValue), "API version %q is not served: fakecloud serves %s",
			truncate(version, 20), strings.Join(served, " and "))
	}
	action, ok := root.String("Action")
	if !ok || action == "" {
		return nil, api.Errorf(codeMissingAction, "the request must contain the parameter Action")
	}
	op, ok := x.svc.ops[action]
	if !ok {
		return nil, api.Errorf(api.CodeInvalidAction, "the action %s is not valid for this web service: fakecloud's %s serves %s",
			truncate(action, 64), x.svc.title, strings.Join(x.svc.actionNames(), ", "))
	}
	x.call.Action, x.awsAction = op.action, action
	if x.svc.dryRun {
		x.dryRun, _ = root.Bool("DryRun")
	}
	return op.run(x, root)
}

// complete refuses parameters nothing read and values of the wrong type; every action calls it
// (through call) once it has read its request.
func (x *exchange) complete() error {
	if x.params == nil { // the JSON protocol: the action decoded its body itself
		return nil
	}
	if err := x.params.Err(); err != nil {
		return queryError(err)
	}
	if unused := x.params.Unused(); len(unused) > 0 {
		return api.Errorf(codeUnknownParameter, "the parameter %s is not recognized by %s (fakecloud serves the parameters docs/fakecloud-aws.md lists)",
			truncate(unused[0], 80), x.call.Action)
	}
	if x.dryRun {
		return api.Errorf(codeDryRunOperation, "request would have succeeded, but the DryRun flag is set (fakecloud checks the signature and the parameters, not permissions)")
	}
	return nil
}

// call completes the request's reading, then runs req as action through the backend.
func call[Resp any](x *exchange, action string, req any) (*Resp, error) {
	if err := x.complete(); err != nil {
		return nil, err
	}
	x.call.Action, x.call.Request = action, req
	resp, err := x.h.cfg.Backend.Do(x.ctx, x.call)
	if err != nil {
		return nil, err
	}
	out, ok := resp.(*Resp)
	if !ok {
		return nil, api.Errorf(api.CodeInternalError, "the backend answered %s with %T", action, resp)
	}
	return out, nil
}

func isSignatureParam(name string) bool {
	switch name {
	case sigv4.QueryAlgorithm, sigv4.QueryCredential, sigv4.QueryDate, sigv4.QueryExpires,
		sigv4.QuerySignedHeaders, sigv4.QuerySignature, sigv4.QuerySecurityToken:
		return true
	}
	return false
}

// queryError turns a parameter problem into an API error.
func queryError(err error) error {
	var q *query.Error
	if errors.As(err, &q) {
		return &api.Error{Code: q.Code, Message: q.Msg}
	}
	return err
}

// httpError is an error whose HTTP status is not its code's (405, 413).
type httpError struct {
	status int
	err    *api.Error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func statusErr(status int, code, format string, args ...any) error {
	return &httpError{status: status, err: api.Errorf(code, format, args...)}
}

// newRequestID returns a random UUID, the shape of AWS request IDs.
func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

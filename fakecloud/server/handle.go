package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/internal/state"
	"github.com/flatnet/flatnet/internal/httpserve"
)

// exchange is what one API request accumulates on its way through, for the answer, the log
// and the metrics.
type exchange struct {
	id        string
	action    string // "unknown" until the action is known, to bound metric labels
	principal string
	// status overrides the error code's status for transport-level problems (405, 413).
	status   int
	injected bool
	// protocol is "ec2" or "elbv2" for the AWS front end's requests, empty for the JSON API.
	protocol string
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	x := &exchange{id: s.nextRequestID(), action: "unknown", principal: "anonymous"}
	w.Header().Set(api.HeaderRequestID, x.id)
	resp, err := s.handle(w, r, x)
	status := s.answer(w, x, resp, err)
	s.observe(x, status, err, time.Since(start))
}

// handle runs one request: route, authenticate, authorize, decode, throttle, inject faults, call.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, x *exchange) (any, error) {
	if r.Method != http.MethodPost {
		x.status = http.StatusMethodNotAllowed
		w.Header().Set("Allow", http.MethodPost)
		return nil, api.Errorf(api.CodeInvalidRequest, "method %s is not allowed: send POST /api/<Action> with a JSON object", r.Method)
	}
	action := strings.TrimPrefix(r.URL.Path, "/api/")
	ep, ok := s.endpoints[action]
	if !ok {
		return nil, api.Errorf(api.CodeInvalidAction, "unknown action %q: see docs/fakecloud-api.md for the actions", truncate(action, 64))
	}
	x.action = action
	p, err := s.authenticate(r)
	if err != nil {
		return nil, err
	}
	x.principal = principalName(p)
	if err := authorize(action, ep, p); err != nil {
		return nil, err
	}
	if action == api.ActionGetChanges {
		// The long poll answers up to maxWait late on purpose: past the server's write
		// timeout, which is the one exemption from it.
		httpserve.ExtendWrite(w, s.maxWait+httpserve.Default.Write)
	}
	req := ep.newReq()
	if status, err := decodeRequest(w, r, req); err != nil {
		x.status = status
		return nil, err
	}
	return s.invoke(r.Context(), x, ep, p, req)
}

// invoke runs a decoded request for p: throttling and injected faults (not for control
// actions), then the call. Both the JSON API and the AWS front end end here.
func (s *Server) invoke(ctx context.Context, x *exchange, ep endpoint, p state.Principal, req any) (any, error) {
	call := state.Call{Principal: p, Now: s.clock()}
	if !ep.control {
		lost, err := s.misbehave(ctx, x, req, &call)
		if err != nil {
			return nil, err
		}
		if lost != nil {
			_, _ = ep.call(s, ctx, call, req) // carried out; its answer is lost
			return nil, lost
		}
	}
	return ep.call(s, ctx, call, req)
}

// misbehave applies throttling and injected faults, as a real cloud would before serving. It
// returns the error to answer instead of the call, or (lost) the error to answer after carrying
// the call out.
func (s *Server) misbehave(ctx context.Context, x *exchange, req any, call *state.Call) (lost, err error) {
	if ok, wait := s.limiter.Allow(x.principal, x.action, unfiltered(req), call.Now); !ok {
		s.metrics.throttled.WithLabelValues(x.action).Inc()
		return nil, api.Errorf(api.CodeRequestLimitExceeded, "request limit exceeded for %s: retry with backoff (a token is back in %v)", x.action, wait)
	}
	d := s.faults.Decide(x.action)
	if d.Latency > 0 {
		s.metrics.injected.WithLabelValues(x.action, "latency").Inc()
		if err := sleep(ctx, d.Latency); err != nil {
			return nil, api.Errorf(api.CodeServiceUnavailable, "request canceled during injected latency: %v", err)
		}
	}
	if d.VisibilityLag > 0 {
		s.metrics.injected.WithLabelValues(x.action, "visibility_lag").Inc()
		call.VisibilityLag = d.VisibilityLag
	}
	if d.Err != nil {
		x.injected = true
		if d.AfterCommit {
			s.metrics.injected.WithLabelValues(x.action, "lost_reply").Inc()
			return d.Err, nil
		}
		s.metrics.injected.WithLabelValues(x.action, "error").Inc()
		return nil, d.Err
	}
	return nil, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// authenticate resolves the bearer token to the admin, a load-balancer token or an instance.
func (s *Server) authenticate(r *http.Request) (state.Principal, error) {
	h := r.Header.Get(api.HeaderAuthorization)
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return state.Principal{}, api.Errorf(api.CodeAuthFailure, "missing bearer token: send %q with the admin token, a load-balancer token or an instance token", api.HeaderAuthorization+": Bearer <token>")
	}
	token := strings.TrimSpace(h[len(scheme):])
	if subtle.ConstantTimeCompare([]byte(token), s.adminToken) == 1 {
		return state.Principal{Admin: true}, nil
	}
	if p, ok := s.store.Authenticate(token); ok {
		return p, nil
	}
	return state.Principal{}, api.Errorf(api.CodeAuthFailure, "the bearer token is not valid: use the admin token, a load-balancer token (fakecloud token create-lb) or the token of a running instance")
}

func principalName(p state.Principal) string {
	switch {
	case p.Admin:
		return "admin"
	case p.LoadBalancer:
		return p.TokenID
	}
	return p.InstanceID
}

// answer writes resp, or err as an api.ErrorResponse, and returns the HTTP status it used.
func (s *Server) answer(w http.ResponseWriter, x *exchange, resp any, err error) int {
	if err == nil {
		body, merr := json.Marshal(resp)
		if merr == nil {
			writeJSON(w, http.StatusOK, body)
			return http.StatusOK
		}
		err = merr
	}
	e := asAPIError(err)
	if e.Code == api.CodeInternalError && !x.injected {
		s.log.Error("internal error", "request_id", x.id, "action", x.action, "err", err)
	}
	status := x.status
	if status == 0 {
		status = api.HTTPStatus(e.Code)
	}
	writeError(w, status, e, x.id)
	return status
}

// asAPIError returns err as an *api.Error; anything else is an internal error whose details
// stay in the server log.
func asAPIError(err error) *api.Error {
	var e *api.Error
	if errors.As(err, &e) {
		return e
	}
	return api.Errorf(api.CodeInternalError, "internal error: see the server log")
}

func writeError(w http.ResponseWriter, status int, e *api.Error, requestID string) {
	out := api.ErrorResponse{Error: *e} // a copy: e may be a shared sentinel
	out.Error.RequestID = requestID
	body, err := json.Marshal(out)
	if err != nil { // cannot happen: three strings
		body = []byte(`{"Error":{"Code":"InternalError","Message":"cannot encode error"}}`)
	}
	writeJSON(w, status, body)
}

// writeJSON writes body and a newline. The length is given, so a large answer goes out in one
// piece, not in chunks, and the client can read it into one buffer.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n')) // the client went away: nothing to do
}

// observe records the request in the metrics and the log.
func (s *Server) observe(x *exchange, status int, err error, took time.Duration) {
	code := "OK"
	if err != nil {
		code = asAPIError(err).Code
	}
	s.metrics.requests.WithLabelValues(x.action, code).Inc()
	s.metrics.latency.WithLabelValues(x.action).Observe(took.Seconds())
	level := slog.LevelInfo
	switch {
	case status >= 500 && !x.injected:
		level = slog.LevelError
	case err == nil && s.endpoints[x.action].read:
		level = slog.LevelDebug
	}
	if !s.log.Enabled(context.Background(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", x.id),
		slog.String("action", x.action),
		slog.String("principal", x.principal),
		slog.String("code", code),
		slog.Int("status", status),
		slog.Bool("injected", x.injected),
		slog.Duration("duration", took),
	}
	if x.protocol != "" {
		attrs = append(attrs, slog.String("protocol", x.protocol))
	}
	s.log.LogAttrs(context.Background(), level, "request", attrs...)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

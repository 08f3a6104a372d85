package l7

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// mirrorBodyLimit is the largest request body a mirror gets a copy of.
const mirrorBodyLimit = 1 << 20

// mirrorTimeout bounds a mirrored exchange.
const mirrorTimeout = 30 * time.Second

// flight is one forwarded request's decisions, carried to the proxy's hooks in its context.
type flight struct {
	listener *listener
	rule     *rule
	backend  *backend
	target   *target
	path     string // the request's escaped path
	upgrade  bool   // an Upgrade (WebSocket) request
	err      error  // what the proxy failed with, for the access log
	retries  int    // tries after the first (Action.Retry)
	start    time.Time
	origin   string // the request's Origin, for the rule's CORS
	// rewritten is what the rule's transforms made of the request (nil: it has none); path
	// is the URL's path after them.
	rewritten *rewritten
}

type flightKey struct{}

func flightOf(ctx context.Context) *flight {
	f, _ := ctx.Value(flightKey{}).(*flight)
	return f
}

// handle serves one request with the listener configuration current when it arrived.
func (e *Engine) handle(w http.ResponseWriter, r *http.Request, l *listener) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	var (
		ru *rule
		f  *flight
	)
	defer func() { e.observe(r, l, ru, f, rec, time.Since(start)) }()
	host, path := requestHost(r.Host), r.URL.EscapedPath()
	if l.scopes.misdirected(r.TLS, host) {
		http.Error(rec, "misdirected request: the Host is not served on a connection opened for this server name; open a connection for it", http.StatusMisdirectedRequest)
		return
	}
	ru = l.match(r, host, path)
	if ru != nil && ru.action.cors != nil {
		if preflight(r) {
			ru.action.cors.answerPreflight(rec, r)
			return
		}
		if ru.action.fixed != nil || ru.action.redirect != nil {
			ru.action.cors.apply(rec.Header(), r.Header.Get("Origin"))
		}
	}
	switch {
	case ru == nil:
		http.Error(rec, "no rule matches the request", http.StatusNotFound)
	case ru.action.fixed != nil:
		fixed(rec, &ru.action)
	case ru.action.redirect != nil:
		editHeader(rec.Header(), ru.action.respEdit)
		rec.Header().Set("Location", redirectLocation(ru.action.redirect, l, r, host, path, ru.action.prefixMatched))
		code := ru.action.redirect.StatusCode
		if code == 0 {
			code = http.StatusFound
		}
		rec.WriteHeader(code)
	default:
		f = &flight{listener: l, rule: ru, path: path, start: start, origin: r.Header.Get("Origin")}
		if (ru.action.hostTransform != nil || ru.action.urlTransform != nil) && !applyTransforms(rec, r, f) {
			return
		}
		e.forward(rec, r, f)
	}
}

func fixed(w http.ResponseWriter, a *action) {
	editHeader(w.Header(), a.respEdit)
	if a.fixed.ContentType != "" {
		w.Header().Set("Content-Type", a.fixed.ContentType)
	} else {
		w.Header()["Content-Type"] = nil // no type given: none sent, not one sniffed
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(a.fixed.Body)))
	w.WriteHeader(a.fixed.StatusCode)
	_, _ = io.WriteString(w, a.fixed.Body)
}

// redirectLocation builds a redirect's Location from the request (host without port, escaped
// path) as Gateway API's RequestRedirect filter says.
func redirectLocation(rd *Redirect, l *listener, r *http.Request, host, path, prefix string) string {
	scheme := rd.Scheme
	if scheme == "" {
		scheme = l.scheme
	}
	if rd.Hostname != "" {
		host = rd.Hostname
	}
	port := rd.Port
	if port == 0 {
		port = l.port
		if rd.Scheme != "" {
			port = wellKnownPort(rd.Scheme)
		}
	}
	hostport := host
	if strings.Contains(host, ":") {
		hostport = "[" + host + "]"
	}
	if port != wellKnownPort(scheme) {
		hostport = net.JoinHostPort(host, strconv.Itoa(port))
	}
	if rd.Path != nil {
		path = modifyPath(*rd.Path, path, prefix)
	}
	loc := scheme + "://" + hostport + path
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	return loc
}

func wellKnownPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

func modifyPath(m PathModifier, path, prefix string) string {
	if m.Type == ReplaceFullPath {
		return m.Value
	}
	return replacePrefix(path, prefix, m.Value)
}

// forward picks a backend and a target and proxies the request there. The request is cloned
// once, by the proxy; rewrite edits that clone (path, host, headers, mirrors).
func (e *Engine) forward(w *recorder, r *http.Request, f *flight) {
	a := &f.rule.action
	f.backend = pickBackend(a)
	if f.backend == nil || f.backend.group == nil {
		http.Error(w, "no valid backend for this rule", http.StatusInternalServerError)
		return
	}
	g := f.backend.group
	f.target = g.pick()
	if f.target == nil {
		http.Error(w, "no target available in target group "+g.name, http.StatusServiceUnavailable)
		return
	}
	f.target.inflight.Add(1)
	defer func() { f.target.inflight.Add(-1) }() // the last target tried

	ctx := context.WithValue(r.Context(), flightKey{}, f)
	f.upgrade = r.Header.Get("Upgrade") != ""
	d := a.timeout
	if a.retry != nil {
		d = a.requestTimeout // the tries together; each try's is retryRoundTrip's
	}
	if d > 0 && !f.upgrade {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	if a.dropsContentType || f.backend.dropsContentType {
		w.Header()["Content-Type"] = nil // removed means absent, not sniffed by net/http
	}
	e.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// timeoutOf is the tighter of the two timeouts; without retries both bound the same exchange.
func timeoutOf(t Timeouts) time.Duration {
	d := t.Request
	if t.BackendRequest > 0 && (d == 0 || t.BackendRequest < d) {
		d = t.BackendRequest
	}
	return d
}

func setPath(u *url.URL, escaped string) {
	p, err := url.PathUnescape(escaped)
	if err != nil {
		p = escaped
	}
	u.Path, u.RawPath = p, escaped
}

func pickBackend(a *action) *backend {
	if a.totalWeight <= 0 {
		return nil
	}
	if len(a.backends) == 1 {
		return &a.backends[0]
	}
	n := rand.IntN(a.totalWeight) //nolint:gosec // load spreading, not security
	for i := range a.backends {
		b := &a.backends[i]
		if b.weight <= 0 {
			continue
		}
		if n < b.weight {
			return b
		}
		n -= b.weight
	}
	return nil
}

// pickTarget picks a backend by weight, then a target of its group: nil when either has none
// to give (no weight, an invalid backend, no target available).
func pickTarget(a *action) (*backend, *target) {
	b := pickBackend(a)
	if b == nil || b.group == nil {
		return b, nil
	}
	return b, b.group.pick()
}

// pick returns the next healthy target round-robin, or, with none healthy, the next initial
// or unhealthy one (fail open); nil when every target is draining, unused or unavailable.
func (g *group) pick() *target {
	ts := g.healthy
	if len(ts) == 0 {
		ts = g.failOpen
	}
	if len(ts) == 0 {
		return nil
	}
	return ts[g.next.Add(1)%uint64(len(ts))]
}

// mirror sends a copy of out to each mirror that its percentage picks, in the background.
func (e *Engine) mirror(out *http.Request, f *flight) {
	var body []byte
	if out.Body != nil && out.Body != http.NoBody {
		buf, err := io.ReadAll(io.LimitReader(out.Body, mirrorBodyLimit+1))
		rest := out.Body
		out.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), rest), rest}
		if err != nil || len(buf) > mirrorBodyLimit {
			return // too big to copy (or already failing): the request goes on unmirrored
		}
		body = buf
	}
	for _, m := range f.rule.action.mirrors {
		if m.percent <= 0 || (m.percent < 100 && rand.Float64()*100 >= m.percent) { //nolint:gosec // sampling
			continue
		}
		t := m.group.pick()
		if t == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(out.Context()), mirrorTimeout)
		mr := out.Clone(ctx)
		mr.RequestURI = ""
		mr.URL.Scheme, mr.URL.Host = targetScheme(m.group), t.hostport
		if body != nil {
			mr.Body = io.NopCloser(bytes.NewReader(body))
		} else {
			mr.Body = http.NoBody
		}
		removeHopByHop(mr.Header)
		tr := m.group.transport
		go func() {
			defer cancel()
			resp, err := tr.RoundTrip(mr)
			if err != nil {
				e.log.Debug("mirror failed", "targetGroup", m.group.name, "target", t.hostport, "err", err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}()
	}
}

func targetScheme(g *group) string {
	if g.proto == ProtocolHTTPS {
		return "https"
	}
	return "http"
}

// rewrite points the outbound request (the proxy's clone, hop-by-hop and client forwarding
// headers already stripped) at the flight's target, applies the rule's rewrite and header edits,
// sets the forwarding headers and starts the mirrors. The rule's transforms (applyTransforms)
// come first: the action's rewrite applies to what they made.
func (e *Engine) rewrite(pr *httputil.ProxyRequest) {
	f := flightOf(pr.In.Context())
	a := &f.rule.action
	out := pr.Out
	out.URL.Scheme = targetScheme(f.backend.group)
	out.URL.Host = f.target.hostport
	if x := f.rewritten; x != nil {
		if x.host != "" {
			out.Host = x.host
		}
		if x.url {
			setPath(out.URL, f.path)
			out.URL.RawQuery, out.URL.ForceQuery = x.query, false
		}
	}
	if rw := a.rewrite; rw != nil {
		if rw.Hostname != "" {
			out.Host = rw.Hostname
		}
		if rw.Path != nil {
			setPath(out.URL, modifyPath(*rw.Path, f.path, a.prefixMatched))
		}
	}
	editHeader(out.Header, a.reqEdit)
	editHeader(out.Header, f.backend.reqEdit)
	// Edits do not reach what the proxy owns: hop-by-hop and forwarding headers.
	for _, h := range a.reserved {
		restore(out.Header, pr.In.Header, h)
	}
	for _, h := range f.backend.reserved {
		restore(out.Header, pr.In.Header, h)
	}
	setForwarded(out, pr.In, f.listener)
	if len(a.mirrors) > 0 && !f.upgrade {
		e.mirror(out, f)
	}
}

// hasToken reports whether a comma-separated header holds token (case-insensitive).
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// reservedHeaders are the headers the proxy itself decides: an edit naming one has no effect.
var reservedHeaders = map[string]bool{"Connection": true, "Proxy-Connection": true, "Keep-Alive": true,
	"Proxy-Authenticate": true, "Proxy-Authorization": true, "Te": true, "Trailer": true,
	"Transfer-Encoding": true, "Upgrade": true, "Forwarded": true, "X-Forwarded-For": true,
	"X-Forwarded-Host": true, "X-Forwarded-Proto": true, "X-Forwarded-Port": true}

// restore undoes an edit of a reserved header: what the proxy made of it stays, which for the
// headers it strips is nothing, and for Te and the upgrade headers what it put back.
func restore(out, in http.Header, name string) {
	switch name {
	case "Te":
		if hasToken(in.Values("Te"), "trailers") {
			out["Te"] = []string{"trailers"}
			return
		}
	case "Connection", "Upgrade":
		if up := in.Get("Upgrade"); up != "" {
			out["Connection"], out["Upgrade"] = []string{"Upgrade"}, []string{up}
			return
		}
	}
	delete(out, name)
}

// setForwarded sets X-Forwarded-For (the client's address appended to what the client sent),
// -Proto and -Port (the listener's) as an ELB does.
func setForwarded(out, in *http.Request, l *listener) {
	setForwardedFrom(out.Header, in.Header["X-Forwarded-For"], clientIP(in.RemoteAddr), l)
}

// clientIP is the IP of a client's address (ip:port), or the address as it is when it has no
// port.
func clientIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// setForwardedFrom sets the X-Forwarded-* fields of out for a request that came with the
// X-Forwarded-For values prior, from the client's address client to listener l: one
// allocation for the three values.
func setForwardedFrom(out http.Header, prior []string, client string, l *listener) {
	if len(prior) > 0 {
		client = strings.Join(prior, ", ") + ", " + client
	}
	vals := &[3]string{client, l.scheme, l.portText}
	out["X-Forwarded-For"] = vals[0:1:1]
	out["X-Forwarded-Proto"] = vals[1:2:2]
	out["X-Forwarded-Port"] = vals[2:3:3]
}

func removeHopByHop(h http.Header) {
	for _, k := range []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		h.Del(k)
	}
}

func (e *Engine) roundTrip(r *http.Request) (*http.Response, error) {
	f := flightOf(r.Context())
	if f.rule.action.retry == nil || f.upgrade {
		return f.backend.group.transport.RoundTrip(r)
	}
	return e.retryRoundTrip(r, f)
}

// proxyError answers a request the target did not: 504 when a timeout ran out, else 502. A
// request canceled because its client's connection went away is recorded as 499; whoever may
// still read (a client that only closed its sending side) gets the 502.
func (e *Engine) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	f := flightOf(r.Context())
	f.err = err
	code := http.StatusBadGateway
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		code = http.StatusGatewayTimeout
	case errors.Is(err, errClientBody): // cut short while it was read to be held for retries
		code = http.StatusBadRequest
	}
	if c := f.rule.action.cors; c != nil {
		c.apply(w.Header(), f.origin) // so a browser sees the status, not a CORS failure
	}
	w.WriteHeader(code)
	if rec, ok := w.(*recorder); ok && errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		rec.status = StatusClientClosedRequest
	}
}

// editHeader applies a HeaderEdit: set, then add, then remove.
func editHeader(h http.Header, e HeaderEdit) {
	for _, s := range e.Set {
		h[s.Name] = []string{s.Value}
	}
	for _, a := range e.Add {
		h[a.Name] = append(h[a.Name], a.Value)
	}
	for _, n := range e.Remove {
		delete(h, n)
	}
}

// recorder remembers the status and size of a response; Unwrap lets http.ResponseController
// reach the connection's Flush and Hijack (streaming, WebSocket).
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 || code == http.StatusSwitchingProtocols {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

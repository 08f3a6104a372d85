package nodeagent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The kubelet's log API, the part of the kubelet's server the API server proxies pods/log to:
//
//	GET /containerLogs/{namespace}/{pod}/{container}?follow&previous&timestamps&sinceSeconds&sinceTime&tailLines&limitBytes&stream
//
// on NodeIP:KubeletPort, TLS. As the kubelet with x509 client authentication and webhook
// authorization: the client presents a certificate ClientCAFile signed (the API server's
// --kubelet-client-certificate), its common name is the user and its organizations the groups,
// and a SubjectAccessReview asks whether that user may get nodes/proxy of this node (the
// kubelet's verb and subresource for /containerLogs). Every other path is 404.

// listenLogs opens the log API's listener; nil when the API is not configured.
func (a *Agent) listenLogs() (net.Listener, error) {
	if a.cfg.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(a.cfg.TLSCertFile, a.cfg.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("the log API's certificate: %w", err)
	}
	caPEM, err := os.ReadFile(a.cfg.ClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("--client-ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("--client-ca-file %s holds no PEM certificate", a.cfg.ClientCAFile)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(a.cfg.NodeIP, strconv.Itoa(a.cfg.KubeletPort)))
	if err != nil {
		return nil, fmt.Errorf("the log API: %w", err)
	}
	return tls.NewListener(ln, &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}), nil
}

// serveLogs serves the log API on ln until ctx ends.
func (a *Agent) serveLogs(ctx context.Context, ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", a.containerLogs)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	a.log.Info("serving the log API", "address", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.log.Error("the log API stopped", "err", err)
	}
}

// containerLogs answers GET /containerLogs/{namespace}/{pod}/{container}.
func (a *Agent) containerLogs(w http.ResponseWriter, r *http.Request) {
	if status, err := a.authorize(r); err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	opts, err := parseLogOptions(r.URL.Query(), time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ns, pod, ctr := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	base, running, err := a.logTarget(ns, pod, ctr)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if !anyExists(logFiles(base, opts.previous)) {
		what := "container"
		if opts.previous {
			what = "previous terminated container"
		}
		// 400, as the kubelet answers: the API server passes its message on.
		http.Error(w, fmt.Sprintf("%s %q in pod %s/%s has no log on node %s", what, ctr, ns, pod, a.cfg.NodeName), http.StatusBadRequest)
		return
	}
	if opts.previous {
		running = func() bool { return false }
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	if err := readLog(r.Context(), flushWriter{w}, base, opts, running); err != nil && r.Context().Err() == nil {
		a.log.Error("serve a container log", "pod", ns+"/"+pod, "container", ctr, "err", err)
	}
}

// authorize checks the client's verified certificate against the API server's authorization.
func (a *Agent) authorize(r *http.Request) (int, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return http.StatusUnauthorized, errors.New("a client certificate is required")
	}
	subj := r.TLS.PeerCertificates[0].Subject
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: subj.CommonName, Groups: subj.Organization,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: "get", Resource: "nodes", Subresource: "proxy", Name: a.cfg.NodeName,
		},
	}}
	res, err := a.kube.AuthorizationV1().SubjectAccessReviews().Create(r.Context(), sar, metav1.CreateOptions{})
	if err != nil {
		return http.StatusInternalServerError, fmt.Errorf("authorization check: %w", err)
	}
	if !res.Status.Allowed {
		return http.StatusForbidden, fmt.Errorf("user %q may not get nodes/proxy of %s: %s", subj.CommonName, a.cfg.NodeName, res.Status.Reason)
	}
	return 0, nil
}

// logTarget finds the container's log among the node's sandboxes (the newest sandbox of the
// pod) and whether its process runs.
func (a *Agent) logTarget(ns, pod, ctr string) (string, func() bool, error) {
	recs, err := a.store.load()
	if err != nil {
		return "", nil, err
	}
	var rec *sandboxRecord
	for _, r := range recs {
		if r.Namespace == ns && r.Name == pod && (rec == nil || r.Created.After(rec.Created)) {
			rec = r
		}
	}
	if rec == nil {
		return "", nil, fmt.Errorf("pod %s/%s has no sandbox on node %s", ns, pod, a.cfg.NodeName)
	}
	if !fileName(ctr) {
		return "", nil, fmt.Errorf("container name %q names no file", ctr)
	}
	running := func() bool { return false }
	for _, c := range rec.Containers {
		if c.Name == ctr {
			pid, start := c.PID, c.StartTime
			running = func() bool { st, err := procStartTime(pid); return err == nil && st == start }
		}
	}
	return a.containerLog(rec.ID, ctr), running, nil
}

func anyExists(paths []string) bool {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// flushWriter sends what is written at once (follow).
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(b []byte) (int, error) { return f.w.Write(b) }
func (f flushWriter) Flush()                      { http.NewResponseController(f.w).Flush() }

// parseLogOptions reads the kubelet's log parameters; any other parameter, or a value out of
// range, is an error naming it.
func parseLogOptions(q map[string][]string, now time.Time) (logOptions, error) {
	opts := logOptions{tailLines: -1}
	var sinceSeconds, sinceTime bool
	for k, vs := range q {
		if len(vs) != 1 {
			return opts, fmt.Errorf("query parameter %s: give it once", k)
		}
		v := vs[0]
		var err error
		switch k {
		case "follow":
			opts.follow, err = strconv.ParseBool(v)
		case "previous":
			opts.previous, err = strconv.ParseBool(v)
		case "timestamps":
			opts.timestamps, err = strconv.ParseBool(v)
		case "sinceSeconds":
			var n int64
			if n, err = strconv.ParseInt(v, 10, 64); err == nil && n < 1 {
				err = errors.New("want a positive number of seconds")
			}
			opts.since, sinceSeconds = now.Add(-time.Duration(n)*time.Second), true
		case "sinceTime":
			opts.since, err = time.Parse(time.RFC3339, v)
			sinceTime = true
		case "tailLines":
			if opts.tailLines, err = strconv.ParseInt(v, 10, 64); err == nil && opts.tailLines < 0 {
				err = errors.New("want 0 or more lines")
			}
		case "limitBytes":
			if opts.limitBytes, err = strconv.ParseInt(v, 10, 64); err == nil && opts.limitBytes < 1 {
				err = errors.New("want a positive number of bytes")
			}
		case "stream":
			switch v {
			case "All":
			case "Stdout", "Stderr":
				opts.stream = strings.ToLower(v)
			default:
				err = errors.New("want All, Stdout or Stderr")
			}
		default:
			return opts, fmt.Errorf("query parameter %s is not supported (follow, previous, timestamps, sinceSeconds, sinceTime, tailLines, limitBytes, stream)", k)
		}
		if err != nil {
			return opts, fmt.Errorf("query parameter %s=%q: %w", k, v, err)
		}
	}
	if sinceSeconds && sinceTime {
		return opts, errors.New("give sinceSeconds or sinceTime, not both")
	}
	return opts, nil
}

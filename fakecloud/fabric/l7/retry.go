package l7

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Retries (Action.Retry), shared by the fast path (fast.go, whose exchange holds the body
// itself) and net/http's (retryRoundTrip below).

// retryBodyLimit is the largest request body a retry sends again (the engine holds it).
const retryBodyLimit = 64 << 10

// tryDeadline is when the try starting now must have its answer: without retries the tighter
// of the rule's timeouts from the request's start; with them the request timeout from the
// start and the backend-request timeout from now, whichever comes first. Zero: none.
func (a *action) tryDeadline(start time.Time) time.Time {
	if a.retry == nil {
		if a.timeout > 0 {
			return start.Add(a.timeout)
		}
		return time.Time{}
	}
	var d time.Time
	if a.requestTimeout > 0 {
		d = start.Add(a.requestTimeout)
	}
	if a.backendTimeout > 0 {
		if t := time.Now().Add(a.backendTimeout); d.IsZero() || t.Before(d) {
			d = t
		}
	}
	return d
}

// retryTarget is the target the next try of f goes to, or nil when the try just made (the
// tries-th) stands: it got an answer whose code the policy does not retry, or failed on the
// client's side, or the policy's attempts are spent, or the request timeout would end before
// the backoff does, or the backend group has no target left. code and err are the try's.
func (a *action) retryTarget(f *flight, tries int, code int, err error) *target {
	p := a.retry
	switch {
	case tries > p.attempts:
		return nil
	case err == nil && !p.retriesCode(code):
		return nil
	case err != nil && (errors.Is(err, errClientBody) || errors.As(err, new(errClientGone))):
		return nil
	case a.requestTimeout > 0 && !time.Now().Add(p.backoff).Before(f.start.Add(a.requestTimeout)):
		return nil
	}
	return f.backend.group.pick()
}

// retarget moves f, and its count in flight, to the target of its next try.
func (f *flight) retarget(t *target) {
	f.target.inflight.Add(-1)
	f.target = t
	f.target.inflight.Add(1)
}

// retryRoundTrip is roundTrip for a rule with retries (Action.Retry): each try with the
// backend-request timeout of its own, a failed one made again on a target picked afresh, after
// the backoff. A body is held for the tries when it has a Content-Length of at most
// retryBodyLimit; a request with another body is tried once.
func (e *Engine) retryRoundTrip(r *http.Request, f *flight) (*http.Response, error) {
	a := &f.rule.action
	retries := true
	var body []byte
	switch {
	case r.Body == nil || r.Body == http.NoBody:
	case r.ContentLength > 0 && r.ContentLength <= retryBodyLimit && r.Header.Get("Expect") == "":
		b, err := io.ReadAll(io.LimitReader(r.Body, r.ContentLength))
		if err != nil || int64(len(b)) != r.ContentLength {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("%w: %d of %d bytes read to hold it for retries: %w", errClientBody, len(b), r.ContentLength, err)
		}
		body = b
	default:
		retries = false
	}
	for tries := 1; ; tries++ {
		ctx, cancel := r.Context(), context.CancelFunc(func() {})
		if a.backendTimeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, a.backendTimeout)
		}
		req := r.WithContext(ctx)
		if tries > 1 {
			u := *r.URL
			u.Host = f.target.hostport
			req.URL = &u
		}
		if body != nil {
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		resp, err := f.backend.group.transport.RoundTrip(req)
		var t *target
		if retries && r.Context().Err() == nil {
			code := 0
			if resp != nil {
				code = resp.StatusCode
			}
			t = a.retryTarget(f, tries, code, err)
		}
		if t == nil {
			if resp != nil {
				resp.Body = cancelOnClose{resp.Body, cancel} // the try's timeout bounds its body too
			} else {
				cancel()
			}
			return resp, err
		}
		if resp != nil {
			_ = resp.Body.Close() // unread: its connection goes with it, as on the fast path
		}
		cancel()
		e.retried(f.listener, f.rule, f, err)
		select {
		case <-time.After(a.retry.backoff):
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
		f.retarget(t)
	}
}

// cancelOnClose ends a context when the body read under it is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

func (e *Engine) modifyResponse(resp *http.Response) error {
	f := flightOf(resp.Request.Context())
	if c := f.rule.action.cors; c != nil {
		c.apply(resp.Header, f.origin)
	}
	if f.rule.action.respEdit.empty() && f.backend.respEdit.empty() {
		return nil
	}
	editHeader(resp.Header, f.rule.action.respEdit)
	editHeader(resp.Header, f.backend.respEdit)
	return nil
}

package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// Client calls one fakecloud endpoint with one token. It is safe for concurrent use.
type Client struct {
	endpoint string
	token    string
	http     *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests through hc (timeouts, transports, tests).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.http = hc }
}

// New returns a client of the fakecloud API at endpoint (e.g. "http://127.0.0.1:7474") that
// authenticates with token, the admin token or an instance token.
func New(endpoint, token string, opts ...Option) *Client {
	c := &Client{endpoint: strings.TrimRight(endpoint, "/"), token: token, http: defaultHTTPClient()}
	for _, o := range opts {
		o(c)
	}
	return c
}

// defaultHTTPClient keeps enough idle connections for a busy daemon and sets no overall timeout:
// the context bounds each call, and GetChanges long-polls.
func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 128
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: t}
}

// maxErrorBody caps how much of an error answer is read.
const maxErrorBody = 64 << 10

// do posts req to /api/<action> and decodes the answer into resp.
func (c *Client) do(ctx context.Context, action string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("fakecloud %s: encode request: %w", action, err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint+"/api/"+action, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("fakecloud %s: %w", action, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		hreq.Header.Set(api.HeaderAuthorization, "Bearer "+c.token)
	}
	hresp, err := c.http.Do(hreq)
	if err != nil {
		return fmt.Errorf("fakecloud %s: %w", action, err)
	}
	defer hresp.Body.Close()
	if hresp.StatusCode < 200 || hresp.StatusCode > 299 {
		return fmt.Errorf("fakecloud %s: %w", action, readError(hresp))
	}
	raw, err := readAnswer(hresp)
	if err != nil {
		return fmt.Errorf("fakecloud %s: read answer: %w", action, err)
	}
	if err := json.Unmarshal(raw, resp); err != nil {
		return fmt.Errorf("fakecloud %s: decode answer: %w", action, err)
	}
	return nil
}

// maxPrealloc caps the buffer sized from an answer's Content-Length before anything is read.
const maxPrealloc = 64 << 20

// readAnswer reads an answer to its end, into one buffer when the server gave its length. Only
// a body read to its end lets the connection go back to the pool: closed before, the transport
// drops it and the next call dials again (a decoder stopping at the end of the JSON value does
// that after every large answer, such as a change-stream batch).
func readAnswer(hresp *http.Response) ([]byte, error) {
	var buf bytes.Buffer
	if n := hresp.ContentLength; n > 0 && n <= maxPrealloc {
		buf.Grow(int(n) + bytes.MinRead) // room to see EOF without growing
	}
	_, err := buf.ReadFrom(hresp.Body)
	return buf.Bytes(), err
}

// readError rebuilds the server's *api.Error from a non-2xx answer. An answer that is not
// fakecloud's (a proxy's, say) becomes an error whose code follows the HTTP status.
func readError(hresp *http.Response) *api.Error {
	raw, _ := io.ReadAll(io.LimitReader(hresp.Body, maxErrorBody)) // a short read leaves a partial body to show
	var body api.ErrorResponse
	if err := json.Unmarshal(raw, &body); err == nil && body.Error.Code != "" {
		e := body.Error
		if e.RequestID == "" {
			e.RequestID = hresp.Header.Get(api.HeaderRequestID)
		}
		return &e
	}
	return &api.Error{
		Code:      codeForStatus(hresp.StatusCode),
		Message:   fmt.Sprintf("unexpected answer %s: %s", hresp.Status, strings.TrimSpace(string(raw))),
		RequestID: hresp.Header.Get(api.HeaderRequestID),
	}
}

func codeForStatus(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return api.CodeRequestLimitExceeded
	case status == http.StatusUnauthorized:
		return api.CodeAuthFailure
	case status == http.StatusForbidden:
		return api.CodeUnauthorizedOperation
	case status == http.StatusInternalServerError:
		return api.CodeInternalError
	case status >= 500:
		return api.CodeServiceUnavailable
	}
	return api.CodeInvalidRequest
}

// call is do with typed request and answer; a nil request is sent as an empty one.
func call[Req, Resp any](ctx context.Context, c *Client, action string, req *Req) (*Resp, error) {
	if req == nil {
		req = new(Req)
	}
	resp := new(Resp)
	if err := c.do(ctx, action, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

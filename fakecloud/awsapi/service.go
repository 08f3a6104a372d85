package awsapi

import (
	"encoding/xml"
	"errors"
	"net/http"
	"sort"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/awsapi/query"
)

// service is one AWS API: its version, signing name, actions and wire conventions.
type service struct {
	name        string // ec2, elbv2
	title       string // for messages
	version     string
	namespace   string
	signingName string
	// dryRun: the service takes a DryRun parameter on every action.
	dryRun bool
	ops    map[string]op
	// authCode names an authentication failure.
	authCode func(authFailure) string
	// code renames a fakecloud error code as this service names it.
	code func(string) string
	// status is the HTTP status of an error code (after renaming).
	status func(string) int
	// writeOK and writeError render answers.
	writeOK    func(w *xml.Encoder, action, requestID string, body any) error
	writeError func(w *xml.Encoder, e *api.Error, status int, requestID string) error
}

// op is one action: run reads its parameters, calls the backend and renders the answer.
type op struct {
	// action is the fakecloud action it runs (for metrics, logs and fault injection).
	action string
	run    func(x *exchange, v query.View) (any, error)
}

func (s *service) actionNames() []string {
	out := make([]string, 0, len(s.ops))
	for n := range s.ops {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (s *service) authError(f authFailure, msg string) error {
	return &api.Error{Code: s.authCode(f), Message: msg}
}

// answer writes body as the answer to action, or err in the service's error shape, and returns
// the HTTP status.
func (s *service) answer(w http.ResponseWriter, requestID, action string, body any, err error) int {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	enc := xml.NewEncoder(w)
	if err == nil {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(xml.Header))
		if werr := s.writeOK(enc, action, requestID, body); werr == nil {
			_ = enc.Flush()
			return http.StatusOK
		}
		// The status is out already; the client sees a truncated document and retries.
		return http.StatusInternalServerError
	}
	e := asAPIError(err)
	out := &api.Error{Code: s.code(e.Code), Message: e.Message}
	status := s.status(out.Code)
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_ = s.writeError(enc, out, status, requestID)
	_ = enc.Flush()
	return status
}

// asAPIError returns err as an *api.Error; anything else is an internal error, its details left
// to the server's log.
func asAPIError(err error) *api.Error {
	var e *api.Error
	if errors.As(err, &e) {
		return e
	}
	return api.Errorf(api.CodeInternalError, "internal error: see fakecloud's log")
}

func xmlns(ns string) xml.Attr { return xml.Attr{Name: xml.Name{Local: "xmlns"}, Value: ns} }

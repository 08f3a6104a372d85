package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// MaxMessage bounds a request or response on the socket.
const MaxMessage = 1 << 20

// DecodeRequest parses and validates one request. Its errors are *Error with CodeVersion or
// CodeInvalid and say what was wrong.
func DecodeRequest(body []byte) (*Request, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("request is not valid JSON for this protocol: %v", err)}
	}
	if dec.More() {
		return nil, &Error{Code: CodeInvalid, Message: "request has data after its JSON object"}
	}
	if req.Version != Version {
		return nil, &Error{Code: CodeVersion, Message: fmt.Sprintf("request speaks protocol version %d; this ipamd speaks %d", req.Version, Version)}
	}
	if err := req.validate(); err != nil {
		return nil, &Error{Code: CodeInvalid, Message: err.Error()}
	}
	return &req, nil
}

func (r *Request) validate() error {
	bodies := 0
	for _, set := range []bool{r.Allocate != nil, r.Release != nil, r.Check != nil, r.Status != nil, r.GC != nil} {
		if set {
			bodies++
		}
	}
	if bodies > 1 {
		return errors.New("request carries more than one body; send exactly the one matching op")
	}
	switch r.Op {
	case OpAllocate:
		if r.Allocate == nil {
			return errors.New("op allocate needs the allocate body")
		}
		return r.Allocate.Owner.Validate()
	case OpRelease:
		if r.Release == nil {
			return errors.New("op release needs the release body")
		}
		return r.Release.Owner.Validate()
	case OpCheck:
		if r.Check == nil {
			return errors.New("op check needs the check body")
		}
		return r.Check.Owner.Validate()
	case OpStatus:
		if bodies == 1 && r.Status == nil {
			return errors.New("op status takes only the status body")
		}
		return nil
	case OpGC:
		if r.GC == nil {
			return errors.New("op gc needs the gc body")
		}
		if r.GC.Network == "" {
			return errors.New("gc.network is empty")
		}
		for i, o := range r.GC.Valid {
			if err := o.Validate(); err != nil {
				return fmt.Errorf("gc.valid[%d]: %w", i, err)
			}
			if o.Network != r.GC.Network {
				return fmt.Errorf("gc.valid[%d] is of network %q, not %q", i, o.Network, r.GC.Network)
			}
		}
		return nil
	case "":
		return errors.New("op is empty; one of allocate, release, check, status, gc")
	}
	return fmt.Errorf("op %q is unknown; one of allocate, release, check, status, gc", r.Op)
}

// Call sends one request to the socket at path and decodes the answer; an answered error is
// returned as *Error. A failure to reach ipamd is returned wrapped, never as *Error.
func Call(ctx context.Context, path string, req *Request) (*Response, error) {
	req.Version = Version
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("reach ipamd at %s: %w", path, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
	}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return nil, fmt.Errorf("send to ipamd: %w", err)
	}
	if uc, ok := conn.(*net.UnixConn); ok {
		_ = uc.CloseWrite()
	}
	// The answer is one JSON value: decode it as soon as it is complete rather than wait for
	// ipamd to close the connection (it tidies up after answering).
	var resp Response
	if err := json.NewDecoder(io.LimitReader(conn, MaxMessage)).Decode(&resp); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		if errors.As(err, &se) || errors.As(err, &te) {
			return nil, fmt.Errorf("ipamd's answer is not valid JSON: %w", err)
		}
		return nil, fmt.Errorf("read ipamd's answer: %w", err)
	}
	if resp.Error != nil {
		return &resp, resp.Error
	}
	return &resp, nil
}

package provider

import "errors"

// The kinds of cloud error lbcontroller acts on. A driver wraps its cloud's error in an *Error
// carrying one of them (or none, for an error lbcontroller only reports).
var (
	// ErrThrottled: the cloud limits the caller's request rate; retry with backoff.
	ErrThrottled = errors.New("the cloud throttles requests")
	// ErrUnavailable: the cloud failed on its side (a 5xx) or could not be reached; retry.
	ErrUnavailable = errors.New("the cloud failed or could not be reached")
	// ErrQuota: an account or resource limit is reached (load balancers, listeners, targets,
	// public addresses); retrying helps only once something is freed.
	ErrQuota = errors.New("a cloud quota is reached")
	// ErrNotFound: the resource does not exist (or is not visible yet).
	ErrNotFound = errors.New("not found in the cloud")
	// ErrInvalid: the cloud refused the request as malformed or conflicting; retrying the same
	// request will not help.
	ErrInvalid = errors.New("the cloud refused the request as invalid")
)

// Error is a cloud's error as a driver hands it over: Kind is one of the sentinels above (nil when
// none fits), Code the cloud's own code (for events, logs and metrics), Err the cloud's error.
type Error struct {
	Kind error
	Code string
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the kind (when set) and the cloud's error, so errors.Is matches both.
func (e *Error) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// Retryable reports whether a call that failed with err is worth repeating with backoff.
func Retryable(err error) bool {
	return errors.Is(err, ErrThrottled) || errors.Is(err, ErrUnavailable)
}

// Code returns the cloud's code of err, "transport" when the cloud gave none.
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return e.Code
	}
	return "transport"
}

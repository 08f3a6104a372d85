package provider

import "errors"

// The kinds of cloud error ipamd acts on. A driver maps its cloud's errors onto them (wrapped in
// an *Error that keeps the cloud's code), so ipamd decides with errors.Is and never learns a
// cloud's codes. An error of no kind is one ipamd only reports.
var (
	// ErrThrottled: the cloud limits the caller's request rate; retry with backoff.
	ErrThrottled = errors.New("the cloud throttles requests")
	// ErrUnavailable: the cloud failed on its side (a 5xx); retry with backoff.
	ErrUnavailable = errors.New("the cloud failed on its side")
	// ErrTransport: the cloud could not be reached, or its answer could not be read.
	ErrTransport = errors.New("the cloud could not be reached")
	// ErrNotFound: the resource does not exist, or is not visible yet (eventual consistency).
	ErrNotFound = errors.New("not found in the cloud")
	// ErrSubnetFull: the subnet has no free addresses (or /28 blocks) left.
	ErrSubnetFull = errors.New("the subnet has no free addresses left")
	// ErrInterfaceLimit: the instance has as many interfaces as its type allows.
	ErrInterfaceLimit = errors.New("the instance's interface limit is reached")
	// ErrAddressLimit: the interface has as many addresses as the instance type allows.
	ErrAddressLimit = errors.New("the interface's address limit is reached")
	// ErrConflict: the cloud's state is not what the request assumed (a device index taken, an
	// address in use elsewhere): the caller's record is behind the cloud.
	ErrConflict = errors.New("the cloud's state conflicts with the request")
)

// Error is a cloud's error as a driver hands it to ipamd: Kind is one of the sentinels above (nil
// when ipamd has no use for the distinction), Code the cloud's own code (for logs and metrics),
// Err the cloud's error. errors.Is matches both Kind and whatever Err wraps.
type Error struct {
	Kind error
	Code string
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the kind (when set) and the cloud's error.
func (e *Error) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// Retryable reports whether a call that failed with err is worth repeating with backoff:
// throttling and the cloud's own failures are; refusals (4xx) are not.
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

package providers

import (
	"context"
	"errors"
)

// kind is one class of cloud error. A kind may refine a broader one (parent): errors.Is then
// matches both, so ipamd can tell a full subnet from an interface limit while lbcontroller only
// asks "is a limit reached?".
type kind struct {
	msg    string
	parent error
}

func (k *kind) Error() string { return k.msg }

func (k *kind) Unwrap() error { return k.parent }

// The kinds of cloud error the consumers act on. A driver maps every error of its cloud onto one
// of them, wrapped in an *Error that keeps the cloud's code (docs/providers.md has the table for
// each driver), so consumers decide with errors.Is and never learn a cloud's codes.
var (
	// ErrThrottled: the cloud limits the caller's request rate. Retryable.
	ErrThrottled error = &kind{msg: "the cloud throttles requests"}
	// ErrTransient: the cloud failed on its side (a 5xx), could not be reached, or its answer
	// could not be read. Retryable: with a client token a repeated create finds the first one.
	ErrTransient error = &kind{msg: "the cloud failed or could not be reached"}
	// ErrNotFound: the resource does not exist, or is not visible yet (eventual consistency).
	ErrNotFound error = &kind{msg: "not found in the cloud"}
	// ErrLimit: a quota or a limit of the account, the instance type or the subnet is reached
	// (load balancers, listeners, targets, public addresses, ...). Retrying helps only once
	// something is freed. The three below refine it.
	ErrLimit error = &kind{msg: "a cloud quota or limit is reached"}
	// ErrSubnetFull: the subnet has no free addresses (or /28 blocks) left. Is ErrLimit too.
	ErrSubnetFull error = &kind{msg: "the subnet has no free addresses left", parent: ErrLimit}
	// ErrInterfaceLimit: the instance has as many interfaces as its type allows. Is ErrLimit too.
	ErrInterfaceLimit error = &kind{msg: "the instance's interface limit is reached", parent: ErrLimit}
	// ErrAddressLimit: the interface has as many addresses as the instance type allows. Is
	// ErrLimit too.
	ErrAddressLimit error = &kind{msg: "the interface's address limit is reached", parent: ErrLimit}
	// ErrConflict: the cloud's state is not what the request assumed (a device index taken, an
	// address or a name in use, a resource still in use, a token reused with other parameters):
	// the caller's record is behind the cloud.
	ErrConflict error = &kind{msg: "the cloud's state conflicts with the request"}
	// ErrAddressUnusable: the address asked for a load balancer (LoadBalancerSpec.Address) is
	// not one the cloud can give it: outside its pool or the subnet, reserved, or held by
	// another. Retrying helps only once the address is freed.
	ErrAddressUnusable error = &kind{msg: "the address asked for cannot be the load balancer's"}
	// ErrInvalid: the cloud refused the request as malformed; the same request never succeeds.
	ErrInvalid error = &kind{msg: "the cloud refused the request as invalid"}
	// ErrPermanent: any other refusal (no permission, bad credentials, an operation the cloud
	// does not offer, a code the driver does not know); the same request never succeeds.
	ErrPermanent error = &kind{msg: "the cloud refused the request"}
)

// Kinds lists every kind, the refinements after what they refine (for tests and docs).
var Kinds = []error{ErrThrottled, ErrTransient, ErrNotFound, ErrLimit, ErrSubnetFull, ErrInterfaceLimit,
	ErrAddressLimit, ErrConflict, ErrAddressUnusable, ErrInvalid, ErrPermanent}

// Error is a cloud's error as a driver hands it over: Kind is one of the kinds above, Code the
// cloud's own code (for events, logs and metrics; empty when the cloud gave none, as on a
// transport failure), Err the cloud's error. errors.Is matches the kind (and what it refines)
// and whatever Err wraps. A nil Kind is read as ErrPermanent.
type Error struct {
	Kind error
	Code string
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the kind and the cloud's error.
func (e *Error) Unwrap() []error { return []error{e.kind(), e.Err} }

func (e *Error) kind() error {
	if e.Kind == nil {
		return ErrPermanent
	}
	return e.Kind
}

// Retryable reports whether a call that failed with err is worth repeating as it was, after a
// backoff: when the cloud throttled, failed on its side or could not be reached. Everything
// else (a refusal, a limit, a conflict, NotFound, the caller's own cancellation or deadline)
// is not. This is the one place that decides; the call policy and every consumer ask it.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return errors.Is(err, ErrThrottled) || errors.Is(err, ErrTransient)
}

// Code returns the cloud's code of err: "ok" for nil, "canceled" or "timeout" for the caller's
// own context ending, "transport" when the cloud gave no code.
func Code(err error) string {
	var e *Error
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &e) && e.Code != "":
		return e.Code
	case errors.Is(err, ErrCircuitOpen):
		return "circuit_open"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "transport"
}

package aws

import (
	"errors"
	"fmt"

	"github.com/flatnet/flatnet/providers"
)

// seamKinds maps the driver's kinds onto the seam's.
var seamKinds = map[kind]error{
	kindNone:           providers.ErrPermanent,
	kindThrottled:      providers.ErrThrottled,
	kindUnavailable:    providers.ErrTransient,
	kindTransport:      providers.ErrTransient,
	kindNotFound:       providers.ErrNotFound,
	kindSubnetFull:     providers.ErrSubnetFull,
	kindInterfaceLimit: providers.ErrInterfaceLimit,
	kindAddressLimit:   providers.ErrAddressLimit,
	kindQuota:          providers.ErrLimit,
	kindConflict:       providers.ErrConflict,
	kindInvalid:        providers.ErrInvalid,
}

// classify turns an error of the SDK into a *providers.Error with the seam's kind and the AWS
// code. The caller's own context errors, and errors classified already, pass unchanged.
func classify(err error) error {
	if err == nil || isContext(err) {
		return err
	}
	var pe *providers.Error
	if errors.As(err, &pe) {
		return err
	}
	k, code := kindOfError(err)
	return &providers.Error{Kind: seamKinds[k], Code: code, Err: err}
}

// conflict reclassifies an InvalidParameterValue as a conflict: the caller knows the
// parameter was right when its record was (a device index ipamd thought free).
func conflict(err error) error {
	if codeOf(err) == "InvalidParameterValue" {
		var pe *providers.Error
		if errors.As(err, &pe) {
			return &providers.Error{Kind: providers.ErrConflict, Code: pe.Code, Err: pe.Err}
		}
	}
	return err
}

// notFound is the error of an answer that lacks what was asked for by ID.
func notFound(code, format string, args ...any) error {
	return &providers.Error{Kind: providers.ErrNotFound, Code: code, Err: fmt.Errorf(format, args...)}
}

// invalid is the error of an answer the driver cannot use.
func invalid(code, format string, args ...any) error {
	return &providers.Error{Kind: providers.ErrInvalid, Code: code, Err: fmt.Errorf(format, args...)}
}

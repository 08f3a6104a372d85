package fakeclouddriver

import (
	"context"
	"errors"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/ipamd/provider"
)

// kinds maps fakecloud's codes onto the provider kinds ipamd acts on; codes not listed get no
// kind. InvalidParameterValue is a conflict only where the driver knows its cause (attach).
var kinds = map[string]error{
	api.CodeRequestLimitExceeded:              provider.ErrThrottled,
	api.CodeInternalError:                     provider.ErrUnavailable,
	api.CodeServiceUnavailable:                provider.ErrUnavailable,
	api.CodeInvalidVpcIDNotFound:              provider.ErrNotFound,
	api.CodeInvalidSubnetIDNotFound:           provider.ErrNotFound,
	api.CodeInvalidInstanceIDNotFound:         provider.ErrNotFound,
	api.CodeInvalidNetworkInterfaceIDNotFound: provider.ErrNotFound,
	api.CodeInvalidAttachmentIDNotFound:       provider.ErrNotFound,
	api.CodeInsufficientFreeAddresses:         provider.ErrSubnetFull,
	api.CodeInsufficientCidrBlocks:            provider.ErrSubnetFull,
	api.CodeAttachmentLimitExceeded:           provider.ErrInterfaceLimit,
	api.CodePrivateIPAddressLimitExceeded:     provider.ErrAddressLimit,
	api.CodeInvalidIPAddressInUse:             provider.ErrConflict,
}

// classify turns an error of fakecloud (or of reaching it) into a *provider.Error. Context
// errors and errors classified already pass unchanged.
func classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pe *provider.Error
	if errors.As(err, &pe) {
		return err
	}
	var e *api.Error
	if !errors.As(err, &e) {
		return &provider.Error{Kind: provider.ErrTransport, Err: err}
	}
	return &provider.Error{Kind: kinds[e.Code], Code: e.Code, Err: err}
}

// conflict classifies err, an InvalidParameterValue becoming provider.ErrConflict: the caller
// knows the parameter was right when its record was (a device index ipamd thought free).
func conflict(err error) error {
	var e *api.Error
	if errors.As(err, &e) && e.Code == api.CodeInvalidParameterValue {
		return &provider.Error{Kind: provider.ErrConflict, Code: e.Code, Err: err}
	}
	return classify(err)
}

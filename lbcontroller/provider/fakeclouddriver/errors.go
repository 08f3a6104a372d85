package fakeclouddriver

import (
	"context"
	"errors"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/lbcontroller/provider"
)

// kinds maps fakecloud's codes onto the provider kinds lbcontroller acts on; codes not listed
// get no kind and are only reported.
var kinds = map[string]error{
	api.CodeRequestLimitExceeded:        provider.ErrThrottled,
	api.CodeInternalError:               provider.ErrUnavailable,
	api.CodeServiceUnavailable:          provider.ErrUnavailable,
	api.CodeLoadBalancerNotFound:        provider.ErrNotFound,
	api.CodeTargetGroupNotFound:         provider.ErrNotFound,
	api.CodeListenerNotFound:            provider.ErrNotFound,
	api.CodeInvalidSubnetIDNotFound:     provider.ErrNotFound,
	api.CodeTooManyLoadBalancers:        provider.ErrQuota,
	api.CodeTooManyTargetGroups:         provider.ErrQuota,
	api.CodeTooManyTargets:              provider.ErrQuota,
	api.CodeTooManyListeners:            provider.ErrQuota,
	api.CodeTooManyTags:                 provider.ErrQuota,
	api.CodeInsufficientPublicAddresses: provider.ErrQuota,
	api.CodeInsufficientFreeAddresses:   provider.ErrQuota,
	api.CodeValidationError:             provider.ErrInvalid,
	api.CodeInvalidParameterValue:       provider.ErrInvalid,
	api.CodeDuplicateLoadBalancerName:   provider.ErrInvalid,
	api.CodeDuplicateTargetGroupName:    provider.ErrInvalid,
	api.CodeDuplicateListener:           provider.ErrInvalid,
	api.CodeIncompatibleProtocols:       provider.ErrInvalid,
	api.CodeInvalidTarget:               provider.ErrInvalid,
	api.CodeInvalidConfigurationRequest: provider.ErrInvalid,
	api.CodeTargetGroupAssociationLimit: provider.ErrInvalid,
	api.CodeIdempotentParameterMismatch: provider.ErrInvalid,
	api.CodeResourceInUse:               provider.ErrInvalid,
	api.CodeInvalidParameterCombination: provider.ErrInvalid,
}

// classify turns an error of fakecloud (or of reaching it) into a *provider.Error. Context
// errors pass unchanged.
func classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var e *api.Error
	if !errors.As(err, &e) {
		return &provider.Error{Kind: provider.ErrUnavailable, Err: err}
	}
	return &provider.Error{Kind: kinds[e.Code], Code: e.Code, Err: err}
}

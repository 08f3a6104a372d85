package fakecloud

import (
	"context"
	"errors"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/providers"
)

// kinds maps fakecloud's codes onto the providers' kinds. A code not listed is
// providers.ErrPermanent (AuthFailure, UnauthorizedOperation, ...). InvalidParameterValue is a
// conflict only where the driver knows its cause (an attach at a device index: conflict).
var kinds = map[string]error{
	api.CodeRequestLimitExceeded: providers.ErrThrottled,

	api.CodeInternalError:      providers.ErrTransient,
	api.CodeServiceUnavailable: providers.ErrTransient,

	api.CodeInvalidVpcIDNotFound:              providers.ErrNotFound,
	api.CodeInvalidSubnetIDNotFound:           providers.ErrNotFound,
	api.CodeInvalidInstanceIDNotFound:         providers.ErrNotFound,
	api.CodeInvalidNetworkInterfaceIDNotFound: providers.ErrNotFound,
	api.CodeInvalidAttachmentIDNotFound:       providers.ErrNotFound,
	api.CodeLoadBalancerNotFound:              providers.ErrNotFound,
	api.CodeTargetGroupNotFound:               providers.ErrNotFound,
	api.CodeListenerNotFound:                  providers.ErrNotFound,
	api.CodeRuleNotFound:                      providers.ErrNotFound,
	api.CodeCertificateNotFound:               providers.ErrNotFound,

	api.CodeInsufficientFreeAddresses:     providers.ErrSubnetFull,
	api.CodeInsufficientCidrBlocks:        providers.ErrSubnetFull,
	api.CodeAttachmentLimitExceeded:       providers.ErrInterfaceLimit,
	api.CodePrivateIPAddressLimitExceeded: providers.ErrAddressLimit,
	api.CodeNetworkInterfaceLimitExceeded: providers.ErrLimit,
	api.CodeTooManyLoadBalancers:          providers.ErrLimit,
	api.CodeTooManyTargetGroups:           providers.ErrLimit,
	api.CodeTooManyTargets:                providers.ErrLimit,
	api.CodeTooManyListeners:              providers.ErrLimit,
	api.CodeTooManyTags:                   providers.ErrLimit,
	api.CodeInsufficientPublicAddresses:   providers.ErrLimit,
	api.CodeTargetGroupAssociationLimit:   providers.ErrLimit,
	api.CodeTooManyRules:                  providers.ErrLimit,
	api.CodeTooManyCertificates:           providers.ErrLimit,

	api.CodeInvalidIPAddressInUse:        providers.ErrConflict,
	api.CodeAddressUnavailable:           providers.ErrAddressUnusable,
	api.CodeDuplicateLoadBalancerName:    providers.ErrConflict,
	api.CodeDuplicateTargetGroupName:     providers.ErrConflict,
	api.CodeDuplicateListener:            providers.ErrConflict,
	api.CodeIdempotentParameterMismatch:  providers.ErrConflict,
	api.CodeResourceInUse:                providers.ErrConflict,
	api.CodeInvalidSubnetConflict:        providers.ErrConflict,
	api.CodeDependencyViolation:          providers.ErrConflict,
	api.CodeIncorrectState:               providers.ErrConflict,
	api.CodeInvalidNetworkInterfaceInUse: providers.ErrConflict,
	api.CodePriorityInUse:                providers.ErrConflict,

	api.CodeValidationError:             providers.ErrInvalid,
	api.CodeInvalidParameterValue:       providers.ErrInvalid,
	api.CodeIncompatibleProtocols:       providers.ErrInvalid,
	api.CodeInvalidTarget:               providers.ErrInvalid,
	api.CodeInvalidConfigurationRequest: providers.ErrInvalid,
	api.CodeInvalidParameterCombination: providers.ErrInvalid,
	api.CodeMissingParameter:            providers.ErrInvalid,
	api.CodeInvalidRequest:              providers.ErrInvalid,
	api.CodeInvalidAction:               providers.ErrInvalid,
	api.CodeInvalidVpcRange:             providers.ErrInvalid,
	api.CodeInvalidSubnetRange:          providers.ErrInvalid,
	api.CodeTooManyActions:              providers.ErrInvalid,
	api.CodeSSLPolicyNotFound:           providers.ErrInvalid,
	api.CodeInvalidLoadBalancerAction:   providers.ErrInvalid,
	api.CodeUnsupportedProtocol:         providers.ErrInvalid,

	api.CodeAuthFailure:           providers.ErrPermanent,
	api.CodeUnauthorizedOperation: providers.ErrPermanent,
	api.CodeOperationNotPermitted: providers.ErrPermanent,
}

// classify turns an error of fakecloud (or of reaching it) into a *providers.Error: a
// fakecloud code by the table, no answer at all (transport) as ErrTransient. Context errors
// and errors classified already pass unchanged.
func classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pe *providers.Error
	if errors.As(err, &pe) {
		return err
	}
	var e *api.Error
	if !errors.As(err, &e) {
		return &providers.Error{Kind: providers.ErrTransient, Err: err}
	}
	k, ok := kinds[e.Code]
	if !ok {
		k = providers.ErrPermanent
	}
	return &providers.Error{Kind: k, Code: e.Code, Err: err}
}

// conflict classifies err, an InvalidParameterValue becoming providers.ErrConflict: the caller
// knows the parameter was right when its record was (a device index ipamd thought free).
func conflict(err error) error {
	var e *api.Error
	if errors.As(err, &e) && e.Code == api.CodeInvalidParameterValue {
		return &providers.Error{Kind: providers.ErrConflict, Code: e.Code, Err: e}
	}
	return classify(err)
}

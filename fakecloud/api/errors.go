package api

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes, named as EC2 names them so that a driver written against fakecloud maps one to one
// onto a real cloud's errors.
const (
	CodeRequestLimitExceeded              = "RequestLimitExceeded"
	CodeInvalidVpcIDNotFound              = "InvalidVpcID.NotFound"
	CodeInvalidSubnetIDNotFound           = "InvalidSubnetID.NotFound"
	CodeInvalidInstanceIDNotFound         = "InvalidInstanceID.NotFound"
	CodeInvalidNetworkInterfaceIDNotFound = "InvalidNetworkInterfaceID.NotFound"
	CodeInvalidAttachmentIDNotFound       = "InvalidAttachmentID.NotFound"
	CodePrivateIPAddressLimitExceeded     = "PrivateIpAddressLimitExceeded"
	CodeAttachmentLimitExceeded           = "AttachmentLimitExceeded"
	CodeNetworkInterfaceLimitExceeded     = "NetworkInterfaceLimitExceeded"
	CodeInsufficientFreeAddresses         = "InsufficientFreeAddressesInSubnet"
	CodeInsufficientCidrBlocks            = "InsufficientCidrBlocks"
	CodeInvalidParameterValue             = "InvalidParameterValue"
	CodeInvalidParameterCombination       = "InvalidParameterCombination"
	CodeMissingParameter                  = "MissingParameter"
	CodeInvalidRequest                    = "InvalidRequest"
	CodeInvalidAction                     = "InvalidAction"
	CodeUnauthorizedOperation             = "UnauthorizedOperation"
	CodeAuthFailure                       = "AuthFailure"
	CodeIdempotentParameterMismatch       = "IdempotentParameterMismatch"
	CodeInvalidIPAddressInUse             = "InvalidIPAddress.InUse"
	CodeInvalidVpcRange                   = "InvalidVpc.Range"
	CodeInvalidSubnetRange                = "InvalidSubnet.Range"
	CodeInvalidSubnetConflict             = "InvalidSubnet.Conflict"
	CodeDependencyViolation               = "DependencyViolation"
	CodeIncorrectState                    = "IncorrectState"
	CodeOperationNotPermitted             = "OperationNotPermitted"
	CodeInvalidNetworkInterfaceInUse      = "InvalidNetworkInterface.InUse"
	CodeInternalError                     = "InternalError"
	CodeServiceUnavailable                = "ServiceUnavailable"
)

// Error is the error every fakecloud call returns, on the server and, rebuilt from the wire, on the
// client. Two Errors match under errors.Is when their codes are equal, so callers write
// errors.Is(err, api.ErrAttachmentLimitExceeded) and never look at message text.
type Error struct {
	Code      string `json:"Code"`
	Message   string `json:"Message"`
	RequestID string `json:"RequestId,omitempty"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// Is matches on the code alone.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code
}

// Errorf builds an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Sentinels for errors.Is. Their messages are empty; they only carry the code.
var (
	ErrRequestLimitExceeded              = &Error{Code: CodeRequestLimitExceeded}
	ErrInvalidVpcIDNotFound              = &Error{Code: CodeInvalidVpcIDNotFound}
	ErrInvalidSubnetIDNotFound           = &Error{Code: CodeInvalidSubnetIDNotFound}
	ErrInvalidInstanceIDNotFound         = &Error{Code: CodeInvalidInstanceIDNotFound}
	ErrInvalidNetworkInterfaceIDNotFound = &Error{Code: CodeInvalidNetworkInterfaceIDNotFound}
	ErrInvalidAttachmentIDNotFound       = &Error{Code: CodeInvalidAttachmentIDNotFound}
	ErrPrivateIPAddressLimitExceeded     = &Error{Code: CodePrivateIPAddressLimitExceeded}
	ErrAttachmentLimitExceeded           = &Error{Code: CodeAttachmentLimitExceeded}
	ErrNetworkInterfaceLimitExceeded     = &Error{Code: CodeNetworkInterfaceLimitExceeded}
	ErrInsufficientFreeAddresses         = &Error{Code: CodeInsufficientFreeAddresses}
	ErrInsufficientCidrBlocks            = &Error{Code: CodeInsufficientCidrBlocks}
	ErrInvalidParameterValue             = &Error{Code: CodeInvalidParameterValue}
	ErrInvalidParameterCombination       = &Error{Code: CodeInvalidParameterCombination}
	ErrMissingParameter                  = &Error{Code: CodeMissingParameter}
	ErrUnauthorizedOperation             = &Error{Code: CodeUnauthorizedOperation}
	ErrAuthFailure                       = &Error{Code: CodeAuthFailure}
	ErrIdempotentParameterMismatch       = &Error{Code: CodeIdempotentParameterMismatch}
	ErrInvalidIPAddressInUse             = &Error{Code: CodeInvalidIPAddressInUse}
	ErrIncorrectState                    = &Error{Code: CodeIncorrectState}
	ErrInternalError                     = &Error{Code: CodeInternalError}
	ErrServiceUnavailable                = &Error{Code: CodeServiceUnavailable}
)

// HTTPStatus is the status the server answers an error code with.
func HTTPStatus(code string) int {
	switch code {
	case CodeRequestLimitExceeded:
		return http.StatusServiceUnavailable // EC2 answers 503 for throttling
	case CodeInternalError:
		return http.StatusInternalServerError
	case CodeServiceUnavailable:
		return http.StatusServiceUnavailable
	case CodeAuthFailure:
		return http.StatusUnauthorized
	case CodeUnauthorizedOperation:
		return http.StatusForbidden
	case CodeInvalidAction:
		return http.StatusNotFound
	case CodeInvalidIPAddressInUse, CodeIdempotentParameterMismatch, CodeDependencyViolation,
		CodeIncorrectState, CodeInvalidNetworkInterfaceInUse, CodeInvalidSubnetConflict,
		CodeDuplicateLoadBalancerName, CodeDuplicateTargetGroupName, CodeDuplicateListener, CodeResourceInUse,
		CodePriorityInUse:
		return http.StatusConflict
	default:
		return http.StatusBadRequest
	}
}

// Retryable reports whether a caller should retry err with backoff: throttling and server-side
// failures are, client errors are not. NotFound errors caused by eventual consistency are the
// caller's judgement (see IsNotFound).
func Retryable(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case CodeRequestLimitExceeded, CodeInternalError, CodeServiceUnavailable:
		return true
	}
	return false
}

// IsNotFound reports whether err says a resource does not exist (or is not visible yet).
func IsNotFound(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case CodeInvalidVpcIDNotFound, CodeInvalidSubnetIDNotFound, CodeInvalidInstanceIDNotFound,
		CodeInvalidNetworkInterfaceIDNotFound, CodeInvalidAttachmentIDNotFound,
		CodeLoadBalancerNotFound, CodeTargetGroupNotFound, CodeListenerNotFound,
		CodeRuleNotFound, CodeCertificateNotFound:
		return true
	}
	return false
}

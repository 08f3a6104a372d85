package aws

import (
	"context"
	"errors"
	"net/http"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// kind is what a caller does about an AWS error; kindOf maps it onto the seam's sentinels.
type kind int

const (
	kindNone kind = iota // reported only
	kindThrottled
	kindUnavailable // AWS failed on its side (5xx): retry
	kindTransport   // AWS could not be reached or its answer not read
	kindNotFound
	kindSubnetFull
	kindInterfaceLimit
	kindAddressLimit
	kindQuota
	kindConflict
	kindInvalid
)

// codes maps EC2's, ELBv2's and ACM's error codes onto kinds. A code not listed gets its kind from its
// HTTP status (5xx: unavailable) or none.
var codes = map[string]kind{
	// Throttling: EC2 and ELBv2 name it differently.
	"RequestLimitExceeded":      kindThrottled,
	"Throttling":                kindThrottled,
	"ThrottlingException":       kindThrottled,
	"TooManyRequestsException":  kindThrottled,
	"RequestThrottledException": kindThrottled,
	"SlowDown":                  kindThrottled,
	// AWS's own failures.
	"InternalError":      kindUnavailable,
	"InternalFailure":    kindUnavailable,
	"ServiceUnavailable": kindUnavailable,
	"Unavailable":        kindUnavailable,
	// Not found (or not visible yet: EC2 is eventually consistent).
	"InvalidNetworkInterfaceID.NotFound": kindNotFound,
	"InvalidInstanceID.NotFound":         kindNotFound,
	"InvalidSubnetID.NotFound":           kindNotFound,
	"InvalidVpcID.NotFound":              kindNotFound,
	"InvalidAttachmentID.NotFound":       kindNotFound,
	"LoadBalancerNotFound":               kindNotFound,
	"TargetGroupNotFound":                kindNotFound,
	"ListenerNotFound":                   kindNotFound,
	"SubnetNotFound":                     kindNotFound,
	"RuleNotFound":                       kindNotFound,
	"CertificateNotFound":                kindNotFound,
	"ResourceNotFoundException":          kindNotFound, // ACM
	// Limits.
	"InsufficientFreeAddressesInSubnet": kindSubnetFull,
	"InsufficientCidrBlocks":            kindSubnetFull,
	"AttachmentLimitExceeded":           kindInterfaceLimit,
	"PrivateIpAddressLimitExceeded":     kindAddressLimit,
	"TooManyLoadBalancers":              kindQuota,
	"TooManyListeners":                  kindQuota,
	"TooManyTargetGroups":               kindQuota,
	"TooManyTargets":                    kindQuota,
	"TooManyTags":                       kindQuota,
	"TooManyRegistrationsForTargetId":   kindQuota,
	"NetworkInterfaceLimitExceeded":     kindQuota,
	"TargetGroupAssociationLimit":       kindQuota,
	"InsufficientPublicAddresses":       kindQuota,
	"TooManyRules":                      kindQuota,
	"TooManyActions":                    kindQuota,
	"TooManyCertificates":               kindQuota,
	"LimitExceededException":            kindQuota, // ACM
	"TooManyTagsException":              kindQuota, // ACM
	// Conflicts: the cloud's state is not what the request assumed.
	"InvalidIPAddress.InUse":              kindConflict,
	"InvalidNetworkInterface.InUse":       kindConflict,
	"IncorrectState":                      kindConflict,
	"ResourceInUse":                       kindConflict,
	"DuplicateLoadBalancerName":           kindConflict,
	"DuplicateTargetGroupName":            kindConflict,
	"DuplicateListener":                   kindConflict,
	"IdempotentParameterMismatch":         kindConflict,
	"DependencyViolation":                 kindConflict,
	"InvalidSubnet.Conflict":              kindConflict,
	"PriorityInUse":                       kindConflict,
	"ResourceInUseException":              kindConflict, // ACM: a listener serves the certificate
	"InvalidParameterValue":               kindInvalid,
	"InvalidParameterCombination":         kindInvalid,
	"InvalidParameter":                    kindInvalid,
	"MissingParameter":                    kindInvalid,
	"UnknownParameter":                    kindInvalid,
	"ValidationError":                     kindInvalid,
	"IncompatibleProtocols":               kindInvalid,
	"InvalidTarget":                       kindInvalid,
	"InvalidConfigurationRequest":         kindInvalid,
	"InvalidRequest":                      kindInvalid,
	"InvalidAction":                       kindInvalid,
	"InvalidSubnet":                       kindInvalid,
	"InvalidSecurityGroup":                kindInvalid,
	"InvalidGroup.NotFound":               kindInvalid,
	"InvalidNetworkInterfaceID.Malformed": kindInvalid,
	"InvalidLoadBalancerAction":           kindInvalid,
	"UnsupportedProtocol":                 kindInvalid,
	"SSLPolicyNotFound":                   kindInvalid,
	"ValidationException":                 kindInvalid, // ACM
	"InvalidArnException":                 kindInvalid, // ACM
	"InvalidParameterException":           kindInvalid, // ACM
	"InvalidTagException":                 kindInvalid, // ACM
}

// apiError is an AWS answer's code and HTTP status; ok is false when there was no answer.
func apiError(err error) (code string, status int, ok bool) {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return "", 0, false
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return ae.ErrorCode(), status, true
}

// kindOfError classifies an error of the SDK: an AWS answer by its code (then its status),
// anything else as a transport failure.
func kindOfError(err error) (kind, string) {
	code, status, ok := apiError(err)
	if !ok {
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() >= http.StatusInternalServerError {
			// A 5xx whose body named no code (a proxy's error page).
			return kindUnavailable, ""
		}
		return kindTransport, ""
	}
	if k, known := codes[code]; known {
		return k, code
	}
	if status >= http.StatusInternalServerError {
		return kindUnavailable, code
	}
	return kindNone, code
}

// isContext reports errors of the caller's own context, which pass unclassified.
func isContext(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// codeOf is err's AWS code, "" when it has none.
func codeOf(err error) string {
	code, _, _ := apiError(err)
	return code
}

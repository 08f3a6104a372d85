package api

// Error codes of the load balancer API, named as ELBv2 names them.
const (
	CodeValidationError             = "ValidationError"
	CodeDuplicateLoadBalancerName   = "DuplicateLoadBalancerName"
	CodeDuplicateTargetGroupName    = "DuplicateTargetGroupName"
	CodeDuplicateListener           = "DuplicateListener"
	CodeLoadBalancerNotFound        = "LoadBalancerNotFound"
	CodeTargetGroupNotFound         = "TargetGroupNotFound"
	CodeListenerNotFound            = "ListenerNotFound"
	CodeTooManyLoadBalancers        = "TooManyLoadBalancers"
	CodeTooManyTargetGroups         = "TooManyTargetGroups"
	CodeTooManyTargets              = "TooManyTargets"
	CodeTooManyListeners            = "TooManyListeners"
	CodeTooManyTags                 = "TooManyTags"
	CodeTargetGroupAssociationLimit = "TargetGroupAssociationLimit"
	CodeIncompatibleProtocols       = "IncompatibleProtocols"
	CodeInvalidTarget               = "InvalidTarget"
	CodeResourceInUse               = "ResourceInUse"
	CodeInvalidConfigurationRequest = "InvalidConfigurationRequest"
	CodeInsufficientPublicAddresses = "InsufficientPublicAddresses"
	// CodeAddressUnavailable (fakecloud's own): the address a CreateLoadBalancer asks for
	// cannot be the load balancer's (outside the public pool or the subnet, reserved, or held).
	CodeAddressUnavailable = "AddressUnavailable"

	// Application load balancers.
	CodeRuleNotFound              = "RuleNotFound"
	CodePriorityInUse             = "PriorityInUse"
	CodeTooManyRules              = "TooManyRules"
	CodeTooManyActions            = "TooManyActions"
	CodeTooManyCertificates       = "TooManyCertificates"
	CodeCertificateNotFound       = "CertificateNotFound"
	CodeSSLPolicyNotFound         = "SSLPolicyNotFound"
	CodeInvalidLoadBalancerAction = "InvalidLoadBalancerAction"
	CodeUnsupportedProtocol       = "UnsupportedProtocol"
)

// Sentinels of the load balancer codes, for errors.Is.
var (
	ErrValidationError             = &Error{Code: CodeValidationError}
	ErrDuplicateLoadBalancerName   = &Error{Code: CodeDuplicateLoadBalancerName}
	ErrDuplicateTargetGroupName    = &Error{Code: CodeDuplicateTargetGroupName}
	ErrDuplicateListener           = &Error{Code: CodeDuplicateListener}
	ErrLoadBalancerNotFound        = &Error{Code: CodeLoadBalancerNotFound}
	ErrTargetGroupNotFound         = &Error{Code: CodeTargetGroupNotFound}
	ErrListenerNotFound            = &Error{Code: CodeListenerNotFound}
	ErrTooManyLoadBalancers        = &Error{Code: CodeTooManyLoadBalancers}
	ErrTooManyTargetGroups         = &Error{Code: CodeTooManyTargetGroups}
	ErrTooManyTargets              = &Error{Code: CodeTooManyTargets}
	ErrTooManyListeners            = &Error{Code: CodeTooManyListeners}
	ErrTooManyTags                 = &Error{Code: CodeTooManyTags}
	ErrTargetGroupAssociationLimit = &Error{Code: CodeTargetGroupAssociationLimit}
	ErrIncompatibleProtocols       = &Error{Code: CodeIncompatibleProtocols}
	ErrInvalidTarget               = &Error{Code: CodeInvalidTarget}
	ErrResourceInUse               = &Error{Code: CodeResourceInUse}
	ErrInvalidConfigurationRequest = &Error{Code: CodeInvalidConfigurationRequest}
	ErrInsufficientPublicAddresses = &Error{Code: CodeInsufficientPublicAddresses}

	ErrRuleNotFound              = &Error{Code: CodeRuleNotFound}
	ErrPriorityInUse             = &Error{Code: CodePriorityInUse}
	ErrTooManyRules              = &Error{Code: CodeTooManyRules}
	ErrTooManyActions            = &Error{Code: CodeTooManyActions}
	ErrTooManyCertificates       = &Error{Code: CodeTooManyCertificates}
	ErrCertificateNotFound       = &Error{Code: CodeCertificateNotFound}
	ErrSSLPolicyNotFound         = &Error{Code: CodeSSLPolicyNotFound}
	ErrInvalidLoadBalancerAction = &Error{Code: CodeInvalidLoadBalancerAction}
)

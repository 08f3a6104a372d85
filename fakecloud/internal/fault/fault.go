package fault

import (
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// AllActions is the Fault.Action that applies to every action without a fault of its own.
const AllActions = "*"

// Upper bounds that keep a typo from hanging the server.
const (
	MaxLatency       = time.Minute
	MaxVisibilityLag = time.Hour
)

// Decision is what to do to one call.
type Decision struct {
	// Err, when set, is answered instead of calling through.
	Err *api.Error
	// Latency is added before the call.
	Latency time.Duration
	// VisibilityLag is handed to the store for this call.
	VisibilityLag time.Duration
	// AfterCommit: Err answers the call after it was carried out, instead of in its place.
	AfterCommit bool
}

// Injector holds the faults in force. It is safe for concurrent use.
type Injector struct {
	actions map[string]bool

	mu     sync.Mutex
	rng    *rand.Rand
	faults map[string]api.Fault
}

// New returns an Injector that accepts faults for the given actions (and "*"), drawing from a
// source seeded with seed until a SetFault reseeds it.
func New(actions []string, seed int64) *Injector {
	known := make(map[string]bool, len(actions))
	for _, a := range actions {
		known[a] = true
	}
	return &Injector{actions: known, rng: newRand(seed), faults: make(map[string]api.Fault)}
}

func newRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
}

// Set validates f and puts it in force, replacing any fault of the same action. A non-zero seed
// reseeds the random source first, so the calls that follow draw a reproducible sequence.
func (in *Injector) Set(f api.Fault, seed int64) error {
	if err := in.Validate(f); err != nil {
		return err
	}
	if f.ErrorRate > 0 && f.ErrorCode == "" {
		f.ErrorCode = api.CodeInternalError
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if seed != 0 {
		in.rng = newRand(seed)
	}
	in.faults[f.Action] = f
	return nil
}

// List returns the faults in force, by action.
func (in *Injector) List() []api.Fault {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]api.Fault, 0, len(in.faults))
	for _, f := range in.faults {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b api.Fault) int {
		switch {
		case a.Action < b.Action:
			return -1
		case a.Action > b.Action:
			return 1
		}
		return 0
	})
	return out
}

// Clear removes the fault of action, or every fault when action is empty.
func (in *Injector) Clear(action string) error {
	if action != "" && action != AllActions && !in.actions[action] {
		return api.Errorf(api.CodeInvalidParameterValue, "unknown action %q: name an API action, \"*\", a data-plane operation, or nothing to clear all", action)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if action == "" {
		clear(in.faults)
		return nil
	}
	delete(in.faults, action)
	return nil
}

// dataPlane reports whether action names a data-plane operation rather than an API action.
func dataPlane(action string) bool { return slices.Contains(api.DataPlaneOperations, action) }

// Decide says what to do to one call of action. An action's own fault takes precedence over
// the "*" fault; they do not add up.
func (in *Injector) Decide(action string) Decision {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.faults) == 0 {
		return Decision{}
	}
	f, ok := in.faults[action]
	if !ok {
		if dataPlane(action) {
			return Decision{}
		}
		if f, ok = in.faults[AllActions]; !ok {
			return Decision{}
		}
	}
	d := Decision{
		Latency:       time.Duration(f.LatencyMillis) * time.Millisecond,
		VisibilityLag: time.Duration(f.VisibilityLagMillis) * time.Millisecond,
	}
	d.Err = in.drawError(action, f)
	d.AfterCommit = f.AfterCommit && d.Err != nil
	return d
}

// drawError picks at most one injected error with a single roll over the fault's codes. It
// draws only when the outcome is uncertain, so certain outcomes leave the sequence of other
// faults untouched.
func (in *Injector) drawError(action string, f api.Fault) *api.Error {
	errs := faultErrors(f)
	total := 0.0
	for _, e := range errs {
		total += e.Rate
	}
	if total <= 0 {
		return nil
	}
	roll := 0.0
	if total < 1 || len(errs) > 1 {
		roll = in.rng.Float64()
	}
	for _, e := range errs {
		if roll < e.Rate {
			return api.Errorf(e.Code, "injected fault on %s (error rate %g)", action, e.Rate)
		}
		roll -= e.Rate
	}
	return nil
}

// faultErrors lists a fault's codes with their rates: ErrorCode/ErrorRate first, then Errors.
func faultErrors(f api.Fault) []api.FaultError {
	var out []api.FaultError
	if f.ErrorRate > 0 {
		out = append(out, api.FaultError{Code: f.ErrorCode, Rate: f.ErrorRate})
	}
	for _, e := range f.Errors {
		if e.Rate > 0 {
			out = append(out, e)
		}
	}
	return out
}

// Validate reports, as an InvalidParameterValue, what is wrong with f.
func (in *Injector) Validate(f api.Fault) error {
	if err := validateErrors(f.Errors); err != nil {
		return err
	}
	switch {
	case f.Action == "":
		return api.Errorf(api.CodeMissingParameter, "fault action is missing: name an API action or \"*\"")
	case f.Action != AllActions && !in.actions[f.Action]:
		return api.Errorf(api.CodeInvalidParameterValue, "unknown action %q: faults apply to the cloud's API actions, \"*\", or a data-plane operation (%s)", f.Action, strings.Join(api.DataPlaneOperations, ", "))
	case dataPlane(f.Action) && (f.VisibilityLagMillis != 0 || f.AfterCommit):
		return api.Errorf(api.CodeInvalidParameterValue, "a data-plane fault (%s) takes error rates and latency only, not a visibility lag or after-commit", f.Action)
	case !(f.ErrorRate >= 0 && f.ErrorRate <= 1):
		return api.Errorf(api.CodeInvalidParameterValue, "error rate %v is out of range: use a fraction from 0 to 1", f.ErrorRate)
	case f.ErrorCode != "" && !knownCodes[f.ErrorCode]:
		return api.Errorf(api.CodeInvalidParameterValue, "unknown error code %q: use one of fakecloud's error codes, e.g. %s", f.ErrorCode, api.CodeInternalError)
	case len(f.Errors) > 16:
		return api.Errorf(api.CodeInvalidParameterValue, "a fault lists %d error codes; at most 16", len(f.Errors))
	case sumRates(f) > 1+1e-9:
		return api.Errorf(api.CodeInvalidParameterValue, "the error rates of a fault add up to %g; at most 1", sumRates(f))
	case f.LatencyMillis < 0 || int64(f.LatencyMillis) > MaxLatency.Milliseconds():
		return api.Errorf(api.CodeInvalidParameterValue, "latency %d ms is out of range: use 0 to %d ms", f.LatencyMillis, MaxLatency.Milliseconds())
	case f.VisibilityLagMillis < 0 || int64(f.VisibilityLagMillis) > MaxVisibilityLag.Milliseconds():
		return api.Errorf(api.CodeInvalidParameterValue, "visibility lag %d ms is out of range: use 0 to %d ms", f.VisibilityLagMillis, MaxVisibilityLag.Milliseconds())
	}
	return nil
}

func sumRates(f api.Fault) float64 {
	sum := f.ErrorRate
	for _, e := range f.Errors {
		sum += e.Rate
	}
	return sum
}

func validateErrors(errs []api.FaultError) error {
	for i, e := range errs {
		switch {
		case !knownCodes[e.Code]:
			return api.Errorf(api.CodeInvalidParameterValue, "Errors[%d]: unknown error code %q: use one of fakecloud's error codes, e.g. %s", i, e.Code, api.CodeInternalError)
		case !(e.Rate >= 0 && e.Rate <= 1):
			return api.Errorf(api.CodeInvalidParameterValue, "Errors[%d]: rate %v is out of range: use a fraction from 0 to 1", i, e.Rate)
		}
	}
	return nil
}

// knownCodes are the codes an injected error may carry.
var knownCodes = map[string]bool{
	api.CodeRequestLimitExceeded:              true,
	api.CodeInvalidVpcIDNotFound:              true,
	api.CodeInvalidSubnetIDNotFound:           true,
	api.CodeInvalidInstanceIDNotFound:         true,
	api.CodeInvalidNetworkInterfaceIDNotFound: true,
	api.CodeInvalidAttachmentIDNotFound:       true,
	api.CodePrivateIPAddressLimitExceeded:     true,
	api.CodeAttachmentLimitExceeded:           true,
	api.CodeNetworkInterfaceLimitExceeded:     true,
	api.CodeInsufficientFreeAddresses:         true,
	api.CodeInsufficientCidrBlocks:            true,
	api.CodeInvalidParameterValue:             true,
	api.CodeInvalidParameterCombination:       true,
	api.CodeMissingParameter:                  true,
	api.CodeInvalidRequest:                    true,
	api.CodeUnauthorizedOperation:             true,
	api.CodeAuthFailure:                       true,
	api.CodeIdempotentParameterMismatch:       true,
	api.CodeInvalidIPAddressInUse:             true,
	api.CodeInvalidVpcRange:                   true,
	api.CodeInvalidSubnetRange:                true,
	api.CodeInvalidSubnetConflict:             true,
	api.CodeDependencyViolation:               true,
	api.CodeIncorrectState:                    true,
	api.CodeOperationNotPermitted:             true,
	api.CodeInvalidNetworkInterfaceInUse:      true,
	api.CodeInternalError:                     true,
	api.CodeServiceUnavailable:                true,
	// The load balancer API's.
	api.CodeValidationError:             true,
	api.CodeDuplicateLoadBalancerName:   true,
	api.CodeDuplicateTargetGroupName:    true,
	api.CodeDuplicateListener:           true,
	api.CodeLoadBalancerNotFound:        true,
	api.CodeTargetGroupNotFound:         true,
	api.CodeListenerNotFound:            true,
	api.CodeTooManyLoadBalancers:        true,
	api.CodeTooManyTargetGroups:         true,
	api.CodeTooManyTargets:              true,
	api.CodeTooManyListeners:            true,
	api.CodeTooManyTags:                 true,
	api.CodeTargetGroupAssociationLimit: true,
	api.CodeIncompatibleProtocols:       true,
	api.CodeInvalidTarget:               true,
	api.CodeResourceInUse:               true,
	api.CodeInvalidConfigurationRequest: true,
	api.CodeInsufficientPublicAddresses: true,
	api.CodeAddressUnavailable:          true,
}

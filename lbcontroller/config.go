package lbcontroller

import (
	"errors"
	"fmt"
	"time"

	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
)

const (
	// Class is the spec.loadBalancerClass this controller serves.
	Class = "flatnet.io/nlb"
	// Finalizer holds a Service's deletion until its cloud resources are gone.
	Finalizer = "flatnet.io/load-balancer"
	// ConditionReady is the Service condition the controller owns.
	ConditionReady = "flatnet.io/LoadBalancerReady"
	// GateCondition is the pod readiness gate (spec.readinessGates[].conditionType).
	GateCondition = "flatnet.io/load-balancer-ready"
	// Component names the controller in events and as its field manager.
	Component = "flatnet-lbcontroller"
)

// Service condition and event reasons.
const (
	ReasonProvisioned  = "Provisioned"
	ReasonInvalid      = "InvalidConfiguration"
	ReasonThrottled    = "CloudThrottled"
	ReasonQuota        = "CloudQuotaExceeded"
	ReasonCloudRefused = "CloudRefused"
	// ReasonAddressNotUsable: the cloud refused the address the Service pins (another load
	// balancer holds it, or it is outside the cloud's pool or subnet).
	ReasonAddressNotUsable = "AddressNotUsable"
	ReasonCloudError       = "CloudError"
	ReasonCreated          = "LoadBalancerCreated"
	ReasonDeleted          = "LoadBalancerDeleted"
	ReasonDeleteFailed     = "LoadBalancerDeleteFailed"
	// ReasonLBProvisioning: the cloud has the load balancer but has not programmed it yet.
	ReasonLBProvisioning = "LoadBalancerProvisioning"
	// ReasonLBFailed: the cloud could not program the load balancer; it retries by itself.
	ReasonLBFailed = "LoadBalancerFailed"
	// ReasonLBRecovered (event): a failed load balancer is active again.
	ReasonLBRecovered = "LoadBalancerRecovered"
)

// Config configures the controllers.
type Config struct {
	// Cluster names this cluster in the ownership tags (required).
	Cluster string
	// DefaultClass makes Services with no loadBalancerClass ours too.
	DefaultClass bool
	// GCInterval is how often orphaned load balancers are looked for (default 1m).
	GCInterval time.Duration
	// DefaultScheme is the scheme of a Service's load balancer when its annotation
	// lb.flatnet.io/scheme does not say (model.DefaultScheme when empty; docs/lbcontroller.md).
	DefaultScheme string
	// Resync is how often each load balancer is compared with the cloud again though nothing
	// changed in the cluster, and repaired where it differs: a listener, rule or target
	// changed or deleted out of band (default 5m).
	Resync time.Duration
	// GateResync re-checks every gated pod this often, a safety net under the change stream
	// (default 5m).
	GateResync time.Duration
	// Provider is the cloud: the driver the main chose (providers/all). Setup wraps it in a
	// providers.Policy tuned by CloudPolicy.
	Provider providers.LoadBalancing
	// CloudPolicy tunes the cloud calls' retries; zero fields take CloudPolicyDefaults'.
	CloudPolicy providers.PolicyConfig
	// GatewayAPI serves the Gateway API (GatewayClasses naming gateway.ControllerName):
	// GatewayAPIAuto (the default) once the API server serves its CRDs, GatewayAPIOff never.
	GatewayAPI string

	// alb is Provider as providers.ApplicationLoadBalancing, under the same policy, when the
	// driver implements it (set by defaults).
	alb providers.ApplicationLoadBalancing
}

// Values of Config.GatewayAPI.
const (
	GatewayAPIAuto = "auto"
	GatewayAPIOff  = "off"
)

// CloudPolicyDefaults returns how lbcontroller calls the cloud unless told otherwise: a few
// quick retries of throttling and transient failures within one pass, then the Service's own
// requeue (100 ms to 30 s, per Service) takes over. No breaker: the requeue already spaces a
// failing Service out, and a Service's condition then names the cloud's real error. No
// NotFound retry: a pass reads what exists by tags, and the next pass sees what appeared late.
func CloudPolicyDefaults() providers.PolicyConfig {
	return providers.PolicyConfig{
		MaxConcurrent: 16, MaxAttempts: 3, BaseBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
		NotFoundWindow: -1, BreakerThreshold: -1,
	}
}

func (c *Config) defaults() error {
	if c.Cluster == "" {
		return errors.New("lbcontroller: a cluster name is required (--cluster-name): it scopes the ownership tags")
	}
	if c.Provider == nil {
		return errors.New("lbcontroller: a cloud provider is required")
	}
	switch c.GatewayAPI {
	case "":
		c.GatewayAPI = GatewayAPIAuto
	case GatewayAPIAuto, GatewayAPIOff:
	default:
		return fmt.Errorf("lbcontroller: gateway API mode %q: want %q or %q", c.GatewayAPI, GatewayAPIAuto, GatewayAPIOff)
	}
	switch c.DefaultScheme {
	case "":
		c.DefaultScheme = model.DefaultScheme
	case model.SchemeInternal, model.SchemeInternetFacing:
	default:
		return fmt.Errorf("lbcontroller: default scheme %q: use internal or internet-facing", c.DefaultScheme)
	}
	pol := providers.NewPolicy(c.CloudPolicy.Or(CloudPolicyDefaults()))
	if a, ok := c.Provider.(providers.ApplicationLoadBalancing); ok {
		c.alb = pol.ApplicationLoadBalancing(a)
	}
	c.Provider = pol.LoadBalancing(c.Provider)
	if c.GCInterval <= 0 {
		c.GCInterval = time.Minute
	}
	if c.Resync <= 0 {
		c.Resync = 5 * time.Minute
	}
	if c.GateResync <= 0 {
		c.GateResync = 5 * time.Minute
	}
	return nil
}

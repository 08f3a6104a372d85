package lbcontroller

import (
	"errors"
	"time"

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
	ReasonCloudError   = "CloudError"
	ReasonCreated      = "LoadBalancerCreated"
	ReasonDeleted      = "LoadBalancerDeleted"
	ReasonDeleteFailed = "LoadBalancerDeleteFailed"
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
	// GateResync re-checks every gated pod this often, a safety net under the change stream
	// (default 5m).
	GateResync time.Duration
	// Provider is the cloud.
	Provider providers.LoadBalancing
}

func (c *Config) defaults() error {
	if c.Cluster == "" {
		return errors.New("lbcontroller: a cluster name is required (--cluster-name): it scopes the ownership tags")
	}
	if c.Provider == nil {
		return errors.New("lbcontroller: a cloud provider is required")
	}
	if c.GCInterval <= 0 {
		c.GCInterval = time.Minute
	}
	if c.GateResync <= 0 {
		c.GateResync = 5 * time.Minute
	}
	return nil
}

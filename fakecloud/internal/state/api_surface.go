package state

import (
	"time"
)

// Principal is who makes a call: the admin, or one instance through its own token.
type Principal struct {
	Admin      bool
	InstanceID string
	// LoadBalancer is the load-balancer token's principal (a load balancer controller): allowed
	// the load balancer, target group, listener, rule and certificate actions and the reads they
	// need, and it sees what a non-admin sees (no instance tokens).
	LoadBalancer bool
	// TokenID names the load-balancer token, for LoadBalancer.
	TokenID string
}

// Call carries what every operation needs besides its request.
type Call struct {
	Principal Principal
	// Now is the time of the call (the server's clock; tests inject theirs).
	Now time.Time
	// VisibilityLag hides interfaces and addresses created less than this long before Now from
	// describes and from calls that name them (eventual consistency, injected by faults).
	VisibilityLag time.Duration
}

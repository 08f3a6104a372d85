package ipamd

import (
	"github.com/flatnet/flatnet/ipamd/wire"
)

// Observer hears what an orchestrator should know of this node's addresses: the capacity once
// ipamd serves, the pool after each change, and allocations that failed. ipamd/kube implements
// it for Kubernetes (capacity on the Node, a condition, events on pods); ipamd itself stays free
// of any orchestrator. Calls come from ipamd's goroutines and must not block.
type Observer interface {
	// Serving says ipamd answers the plugin and can place capacity pods' addresses.
	Serving(capacity int)
	// PoolChanged reports the pool after the worker looked at it (often; dedupe on your side).
	PoolChanged(PoolReport)
	// AllocationFailed says an ADD for pod got no address, and why.
	AllocationFailed(pod wire.PodRef, err error)
}

// PoolReport is the pool as an Observer sees it.
type PoolReport struct {
	Free, Cooling, Assigned, Capacity int
	// Full says why the node cannot grow its pool ("" when it can): the instance's interface or
	// address limit, a configured cap, or a full subnet.
	Full string
}

// Exhausted reports whether an ADD arriving now would fail for lack of addresses: nothing free
// and no way to get more.
func (r PoolReport) Exhausted() bool { return r.Full != "" && r.Free == 0 }

type noObserver struct{}

func (noObserver) Serving(int)                         {}
func (noObserver) PoolChanged(PoolReport)              {}
func (noObserver) AllocationFailed(wire.PodRef, error) {}

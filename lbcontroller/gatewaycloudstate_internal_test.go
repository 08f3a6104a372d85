package lbcontroller

import (
	"testing"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/flatnet/flatnet/providers"
)

// TestCloudStatesConcernTheirGateway: a load balancer's reported state moves only the Gateway
// whose last pass saw it otherwise (and wakes a pass), and makes only a pass of that Gateway
// that ran during the report look again; another load balancer's report, or one that repeats
// the state, moves nothing. A pass that read a state the stream shows otherwise is looked at
// again until the two agree.
func TestCloudStatesConcernTheirGateway(t *testing.T) {
	wake := make(chan event.GenericEvent, 1)
	active := func(id string) providers.LoadBalancerState {
		return providers.LoadBalancerState{ID: id, State: providers.LBActive}
	}
	failed := providers.LoadBalancerState{ID: "lb-a", State: providers.LBFailed, Reason: "refused"}
	r := &gatewayReconciler{log: logr.Discard(), wake: wake, records: map[string]*gatewayRecord{
		"ns/a": {deployed: 3, version: 3, cloud: map[string]providers.LoadBalancerState{"lb-a": active("lb-a")}},
		"ns/b": {deployed: 5, version: 5, cloud: map[string]providers.LoadBalancerState{"lb-b": active("lb-b"), "lb-b-nlb": active("lb-b-nlb")}},
	}}
	woken := func() bool {
		select {
		case <-wake:
			return true
		default:
			return false
		}
	}
	// The stream's first full view: every load balancer as the passes saw it.
	r.cloudStates(true, []providers.LoadBalancerState{active("lb-a"), active("lb-b"), active("lb-b-nlb"), active("lb-service")})
	if woken() || r.records["ns/a"].deployed != 3 || r.records["ns/b"].deployed != 5 {
		t.Fatalf("the first full view, as the passes saw it, moved a Gateway: %+v %+v", r.records["ns/a"], r.records["ns/b"])
	}

	// A pass of ns/b begins; a Service's load balancer fails meanwhile.
	r.mu.Lock()
	since := r.reports.Count()
	r.mu.Unlock()
	r.cloudStates(false, []providers.LoadBalancerState{{ID: "lb-service", State: providers.LBFailed}})
	if woken() {
		t.Error("a Service's load balancer woke the Gateway controller")
	}
	r.mu.Lock()
	if d := r.recheckLocked(r.records["ns/b"].cloud, since); d != 0 {
		t.Errorf("another load balancer's report made ns/b's pass look again in %s", d)
	}
	r.mu.Unlock()

	// ns/a's load balancer fails: ns/a alone is to be deployed again, and a pass is woken.
	r.cloudStates(false, []providers.LoadBalancerState{failed})
	if !woken() {
		t.Error("ns/a's load balancer failing woke no pass")
	}
	if r.records["ns/a"].deployed != 0 || r.records["ns/b"].deployed != 5 {
		t.Errorf("after lb-a failed: ns/a deployed %d (want 0), ns/b %d (want 5)", r.records["ns/a"].deployed, r.records["ns/b"].deployed)
	}
	r.mu.Lock()
	// A pass of ns/a that began before the report may have read the state from before it.
	if d := r.recheckLocked(map[string]providers.LoadBalancerState{"lb-a": active("lb-a")}, since); d != raceRecheck {
		t.Errorf("a pass of ns/a during lb-a's report: recheck in %s, want %s", d, raceRecheck)
	}
	// One that began after it and read it failed, as the stream says: nothing to recheck.
	if d := r.recheckLocked(map[string]providers.LoadBalancerState{"lb-a": failed}, r.reports.Count()); d != 0 {
		t.Errorf("a pass of ns/a after the report that agrees with it: recheck in %s", d)
	}
	// One that began after it but read it active (a stream behind, or a state it never saw):
	// looked at again until the two agree.
	if d := r.recheckLocked(map[string]providers.LoadBalancerState{"lb-a": active("lb-a")}, r.reports.Count()); d != disagreeRecheck {
		t.Errorf("a pass of ns/a that disagrees with the stream: recheck in %s, want %s", d, disagreeRecheck)
	}
	r.mu.Unlock()

	// The same state again (a load balancer's tags changed, say): nothing moves.
	r.records["ns/a"].deployed, r.records["ns/a"].cloud = 4, map[string]providers.LoadBalancerState{"lb-a": failed}
	r.cloudStates(false, []providers.LoadBalancerState{failed})
	if woken() || r.records["ns/a"].deployed != 4 {
		t.Errorf("a report repeating lb-a's state moved ns/a (deployed %d)", r.records["ns/a"].deployed)
	}
	// The failure's reason changes: the Gateway's message is to follow it.
	r.cloudStates(false, []providers.LoadBalancerState{{ID: "lb-a", State: providers.LBFailed, Reason: "refused again"}})
	if !woken() || r.records["ns/a"].deployed != 0 {
		t.Errorf("a new reason for lb-a's failure did not move ns/a (deployed %d)", r.records["ns/a"].deployed)
	}
	// ns/b's companion network load balancer goes missing from a full view: ns/b moves.
	r.cloudStates(true, []providers.LoadBalancerState{active("lb-b"), active("lb-service")})
	if !woken() || r.records["ns/b"].deployed != 0 {
		t.Errorf("ns/b's network load balancer gone from a full view did not move ns/b (deployed %d)", r.records["ns/b"].deployed)
	}
}

package deploy

import "github.com/flatnet/flatnet/providers"

// StateReports counts the cloud's change stream's reports of load balancer states and keeps, by
// load balancer ID, the count at its last report: a pass that noted Count when it began asks
// Since whether its own load balancer was reported meanwhile (what it read may be from before
// the report); another load balancer's report does not concern it. The zero value is ready.
// Its owner's lock guards it.
type StateReports struct {
	count uint64
	at    map[string]uint64
}

// maxStateReports bounds the IDs StateReports keeps: past it, those inUse does not name and
// that were not reported last are dropped (only reports after a pass began matter, and only of
// load balancers a pass is of).
const maxStateReports = 4096

// Record counts one report of the changed load balancers. inUse, called only when the IDs kept
// pass maxStateReports, names the load balancers passes may still ask about.
func (s *StateReports) Record(changed []providers.LoadBalancerState, inUse func() map[string]bool) {
	s.count++
	if s.at == nil {
		s.at = map[string]uint64{}
	}
	for _, lb := range changed {
		s.at[lb.ID] = s.count
	}
	if len(s.at) <= maxStateReports {
		return
	}
	keep := inUse()
	for id, n := range s.at {
		if !keep[id] && n < s.count {
			delete(s.at, id)
		}
	}
}

// Count is the number of reports so far: what a pass notes when it begins.
func (s *StateReports) Count() uint64 { return s.count }

// Since reports whether load balancer id was reported after count since.
func (s *StateReports) Since(id string, since uint64) bool { return s.at[id] > since }

package deploy

import (
	"fmt"
	"testing"

	"github.com/flatnet/flatnet/providers"
)

// TestStateReports: a pass learns of its own load balancer's reports after it began, not of
// others' nor of earlier ones; past the bound, IDs no pass may ask about are dropped, those in
// use and the last reported are kept.
func TestStateReports(t *testing.T) {
	var s StateReports
	lb := func(id string) []providers.LoadBalancerState { return []providers.LoadBalancerState{{ID: id}} }
	none := func() map[string]bool { t.Fatal("inUse asked below the bound"); return nil }
	s.Record(lb("a"), none)
	began := s.Count()
	s.Record(lb("b"), none)
	if s.Since("a", began) || !s.Since("b", began) || s.Since("c", 0) {
		t.Fatalf("after a, then b: since(a)=%v since(b)=%v since(c)=%v", s.Since("a", began), s.Since("b", began), s.Since("c", 0))
	}
	for i := range maxStateReports {
		s.Record(lb(fmt.Sprint("x", i)), func() map[string]bool { return map[string]bool{"a": true} })
	}
	if len(s.at) > maxStateReports {
		t.Errorf("%d IDs kept, bound %d", len(s.at), maxStateReports)
	}
	last := fmt.Sprint("x", maxStateReports-1)
	if !s.Since("a", 0) || !s.Since(last, 0) || s.Since("b", 0) {
		t.Errorf("after pruning: a (in use) %v, %s (last) %v, b (neither) %v; want true, true, false", s.Since("a", 0), last, s.Since(last, 0), s.Since("b", 0))
	}
}

package fabric

import "slices"

// diffLBs adds the load balancer operations. A load balancer this process has not ensured yet
// (adopted from the kernel) is ensured in place, never recreated, so connections survive a
// restart; its program is rewritten unless the kernel already runs the wanted one, and the
// connections to targets no longer registered are cut, since nobody remembers which were.
func (p *Plan) diffLBs(desired, actual *World) {
	for _, id := range sortedKeys(actual.LBs) {
		a := actual.LBs[id]
		if _, ok := desired.LBs[id]; !ok {
			p.DelLBs = append(p.DelLBs, a)
		}
	}
	for _, id := range sortedKeys(desired.LBs) {
		d, a := desired.LBs[id], actual.LBs[id]
		if a == nil || !a.Ready || !a.sameBase(d) {
			p.EnsureLBs = append(p.EnsureLBs, d)
		}
		if a == nil || a.Program.Hash != d.Program.Hash {
			p.ProgramLBs = append(p.ProgramLBs, d)
		}
		if a != nil && (!a.Ready || !subsetSorted(a.Keep, d.Keep)) {
			p.FlushLBs = append(p.FlushLBs, d)
		}
	}
}

// subsetSorted reports whether every element of a is in b (sorted).
func subsetSorted(a, b []string) bool {
	for _, t := range a {
		if _, found := slices.BinarySearch(b, t); !found {
			return false
		}
	}
	return true
}

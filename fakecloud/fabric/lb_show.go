package fabric

import (
	"fmt"
	"io"
)

// writeLBs prints each load balancer's namespace, addresses and program, joined with the
// control plane's view: ok; missing (wanted, no namespace); stale (a namespace nobody wants);
// old program (the kernel runs another program than the snapshot asks for).
func writeLBs(w io.Writer, prefix string, desired, actual *World) {
	ids := map[string]bool{}
	for id := range desired.LBs {
		ids[id] = true
	}
	for id := range actual.LBs {
		ids[id] = true
	}
	if len(ids) == 0 {
		return
	}
	fmt.Fprintln(w, "LOAD BALANCER\tVPC\tNETNS\tADDRESS\tVIP\tLISTENERS\tPROGRAM\tSTATE")
	for _, id := range sortedKeys(ids) {
		d, a := desired.LBs[id], actual.LBs[id]
		state := "ok"
		switch {
		case a == nil:
			state, a = "missing", &LB{}
		case d == nil:
			state, d = "stale", a
		case a.Program.Hash != d.Program.Hash:
			state = "old program"
		}
		vip := "-"
		if d.VIP.IsValid() {
			vip = d.VIP.String()
		}
		var listeners []string
		for _, l := range d.Program.Listeners {
			listeners = append(listeners, fmt.Sprintf("%s/%d->%d", l.Protocol, l.Port, len(l.Targets)))
		}
		for _, l := range d.AppListeners {
			listeners = append(listeners, l+"(l7)") // served by the fabric's engine, not nftables
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%v\t%s\t%s\n", id, d.VpcID, LBNetns(prefix, id), d.Addr, vip,
			listeners, a.Program.Hash, state)
	}
}

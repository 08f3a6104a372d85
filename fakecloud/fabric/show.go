package fabric

import (
	"fmt"
	"io"
	"net/netip"
	"text/tabwriter"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// Show prints each VPC router's table as programmed in the kernel, joined with the control plane's
// view when snap is not nil: destination -> interface -> instance -> device, and a state column
// (ok; missing: wanted, not programmed; stale: programmed, not wanted; sdc-off).
func Show(w io.Writer, prefix string, snap *api.Snapshot) error {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	k := newKernel(prefix, 0)
	defer k.close()
	actual, err := k.observe()
	if err != nil {
		return fmt.Errorf("fabric show: %w", err)
	}
	desired := NewWorld()
	if snap != nil {
		desired, _ = Desired(snap) // skipped entries show as missing
	}
	return writeTables(w, prefix, desired, actual)
}

func writeTables(w io.Writer, prefix string, desired, actual *World) error {
	vpcs := map[string]bool{}
	for id := range desired.Routers {
		vpcs[id] = true
	}
	for id := range actual.Routers {
		vpcs[id] = true
	}
	if len(vpcs) == 0 {
		_, err := fmt.Fprintf(w, "no VPC routers (namespaces %s*)\n", prefix)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, id := range sortedKeys(vpcs) {
		d, a := desired.Routers[id], actual.Routers[id]
		writeRouter(tw, prefix, id, d, a)
	}
	writeLBs(tw, prefix, desired, actual)
	return tw.Flush()
}

func writeRouter(w io.Writer, prefix, vpc string, d, a *Router) {
	if d == nil {
		d = newRouter(vpc, netip.Prefix{})
	}
	if a == nil {
		a = newRouter(vpc, netip.Prefix{})
	}
	cidr := d.CIDR
	if !cidr.IsValid() {
		cidr = a.CIDR
	}
	fmt.Fprintf(w, "VPC %s  %s  router netns %s  internet %s (%s)\n", vpc, cidr, RouterNetns(prefix, vpc),
		InternetNetns(prefix, vpc), InternetHostAddr)
	fmt.Fprintln(w, "DESTINATION\tINTERFACE\tINSTANCE\tDEVICE\tROUTER LINK\tSTATE")
	all := map[netip.Prefix]bool{}
	for dst := range d.Routes {
		all[dst] = true
	}
	for dst := range a.Routes {
		all[dst] = true
	}
	for _, dst := range sortedPrefixes(all) {
		eni, state := routeState(d, a, dst)
		p := a.Ports[eni]
		if p.ENI == "" {
			p = d.Ports[eni]
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", dst, eni, p.Instance, p.nodeLink(), portName(eni), state)
	}
	fmt.Fprintf(w, "%s\t(unassigned)\t\t\t%s\tdropped\n", cidr, sinkLink)
	fmt.Fprintf(w, "0.0.0.0/0\t(internet)\t\t\t%s\tvia %s\n", internetLink, InternetHostAddr)
	writeAttached(w, a)
	fmt.Fprintln(w)
}

// writeAttached lists the instances whose ports lead into namespaces the fabric does not own,
// as the kernel shows them (the router ports' aliases).
func writeAttached(w io.Writer, a *Router) {
	attached := map[string]string{}
	for _, p := range a.Ports {
		if p.Netns != "" {
			attached[p.Instance] = p.Netns
		}
	}
	for _, inst := range sortedKeys(attached) {
		fmt.Fprintf(w, "(attached)\t\t%s\t\tnetns %s\t\n", inst, attached[inst])
	}
}

func routeState(d, a *Router, dst netip.Prefix) (eni, state string) {
	want, wanted := d.Routes[dst]
	have, programmed := a.Routes[dst]
	switch {
	case wanted && !programmed:
		return want, "missing"
	case !wanted && programmed:
		return have, "stale"
	case want != have:
		return want, "wrong interface (" + have + ")"
	}
	if p, ok := a.Ports[have]; ok && !p.SourceDestCheck {
		return have, "ok, sdc-off"
	}
	return have, "ok"
}

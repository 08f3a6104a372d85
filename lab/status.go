package lab

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// PrintStatus writes the lab's nodes, their interfaces and pools, and its pods, as tables.
func (l *Lab) PrintStatus(ctx context.Context, w io.Writer) error {
	st := l.State()
	enis, err := l.cloud.DescribeNetworkInterfaces(ctx, &api.DescribeNetworkInterfacesRequest{
		Filters: []api.Filter{{Name: "vpc-id", Values: []string{st.VpcID}}}})
	if err != nil {
		return fmt.Errorf("describe the lab's interfaces: %w", err)
	}
	byInstance := map[string][]api.NetworkInterface{}
	for _, e := range enis.NetworkInterfaces {
		if e.Attachment != nil {
			byInstance[e.Attachment.InstanceID] = append(byInstance[e.Attachment.InstanceID], e)
		}
	}
	fmt.Fprintf(w, "VPC %s  subnet %s  fakecloud %s (pid %d)\n\n", st.VpcID, st.SubnetID, st.Endpoint, st.FakecloudPID)
	if cp := st.ControlPlane; cp != nil {
		fmt.Fprintf(w, "Kubernetes: %s %s at %s, API server %s (in the VPC %s)\n  kubectl --kubeconfig %s\n\n",
			cp.Name, cp.InstanceID, cp.IP, cp.Server, cp.VPCServer(), cp.Kubeconfig)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tINSTANCE\tPRIMARY IP\tIPAMD\tFREE\tASSIGNED\tCAPACITY\tINTERFACES (device: secondary IPs + prefixes)")
	for _, n := range st.Nodes {
		ipamd, free, assigned, capacity := "down", "-", "-", "-"
		if alive(n.IpamdPID) {
			ipamd = fmt.Sprintf("pid %d", n.IpamdPID)
			if s, err := l.Status(ctx, n.Name); err == nil {
				free, assigned, capacity = fmt.Sprint(s.Free), fmt.Sprint(s.Assigned), fmt.Sprint(s.Capacity)
				if !s.Ready {
					ipamd += " (not ready: " + s.Reason + ")"
				}
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.InstanceID, n.PrimaryIP, ipamd, free, assigned, capacity, describeENIs(byInstance[n.InstanceID]))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POD\tNODE\tIP\tNAMESPACE\tCONTAINER ID")
	pods := st.Pods
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	for _, p := range pods {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, p.Node, p.IP, p.Netns, p.ContainerID)
	}
	return tw.Flush()
}

func describeENIs(enis []api.NetworkInterface) string {
	sort.Slice(enis, func(i, j int) bool { return enis[i].Attachment.DeviceIndex < enis[j].Attachment.DeviceIndex })
	var parts []string
	for _, e := range enis {
		parts = append(parts, fmt.Sprintf("eth%d: %d+%d", e.Attachment.DeviceIndex, len(e.PrivateIPAddresses)-1, len(e.Ipv4Prefixes)))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

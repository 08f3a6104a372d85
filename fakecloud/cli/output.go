package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// emit prints v as JSON, or as the table that table writes.
func (g *globals) emit(v any, table func(w *tabwriter.Writer)) error {
	if g.output == "json" {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("write json: %w", err)
		}
		return nil
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	table(w)
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// done prints a one-line acknowledgement (JSON: the empty answer).
func (g *globals) done(v any, format string, args ...any) error {
	return g.emit(v, func(w *tabwriter.Writer) { fmt.Fprintf(w, format+"\n", args...) })
}

func row(w *tabwriter.Writer, cols ...string) { fmt.Fprintln(w, strings.Join(cols, "\t")) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func vpcTable(vpcs []api.Vpc) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		row(w, "VPC", "CIDR", "STATE", "TAGS")
		for _, v := range vpcs {
			row(w, v.VpcID, v.CidrBlock, v.State, tagsString(v.Tags))
		}
	}
}

func subnetTable(subnets []api.Subnet) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		row(w, "SUBNET", "VPC", "CIDR", "AZ", "FREE IPS", "GATEWAY")
		for _, s := range subnets {
			row(w, s.SubnetID, s.VpcID, s.CidrBlock, s.AvailabilityZone, strconv.Itoa(s.AvailableIPAddressCount), s.Gateway)
		}
	}
}

func instanceTable(instances []api.Instance, withToken bool) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		head := []string{"INSTANCE", "TYPE", "STATE", "SUBNET", "PRIVATE IP", "INTERFACES"}
		if withToken {
			head = append(head, "TOKEN")
		}
		row(w, head...)
		for _, in := range instances {
			cols := []string{in.InstanceID, in.InstanceType, in.State, in.SubnetID, in.PrivateIPAddress, strconv.Itoa(len(in.NetworkInterfaces))}
			if withToken {
				cols = append(cols, orDash(in.Token))
			}
			row(w, cols...)
		}
	}
}

func instanceTypeTable(types []api.InstanceTypeInfo) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		row(w, "TYPE", "INTERFACES", "IPV4 PER INTERFACE", "MAX PODS")
		for _, t := range types {
			maxPods := t.MaximumNetworkInterfaces*(t.Ipv4AddressesPerInterface-1) + 2
			row(w, t.InstanceType, strconv.Itoa(t.MaximumNetworkInterfaces), strconv.Itoa(t.Ipv4AddressesPerInterface), strconv.Itoa(maxPods))
		}
	}
}

func eniTable(enis []api.NetworkInterface) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		row(w, "INTERFACE", "STATUS", "SUBNET", "INSTANCE", "DEVICE", "ATTACHMENT", "PRIMARY IP", "SECONDARY IPS", "PREFIXES", "SRC/DST CHECK")
		for _, e := range enis {
			inst, dev, att := "-", "-", "-"
			if a := e.Attachment; a != nil {
				inst, dev, att = a.InstanceID, strconv.Itoa(a.DeviceIndex), a.AttachmentID+" ("+a.Status+")"
			}
			var secondary, prefixes []string
			for _, ip := range e.PrivateIPAddresses {
				if !ip.Primary {
					secondary = append(secondary, ip.PrivateIPAddress)
				}
			}
			for _, p := range e.Ipv4Prefixes {
				prefixes = append(prefixes, p.Ipv4Prefix)
			}
			row(w, e.NetworkInterfaceID, e.Status, e.SubnetID, inst, dev, att, e.PrivateIPAddress,
				orDash(strings.Join(secondary, ",")), orDash(strings.Join(prefixes, ",")), strconv.FormatBool(e.SourceDestCheck))
		}
	}
}

func assignTable(r *api.AssignPrivateIPAddressesResponse) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		var prefixes []string
		for _, p := range r.AssignedIpv4Prefixes {
			prefixes = append(prefixes, p.Ipv4Prefix)
		}
		row(w, "INTERFACE", "ASSIGNED IPS", "ASSIGNED PREFIXES")
		row(w, r.NetworkInterfaceID, orDash(strings.Join(r.AssignedPrivateIPAddresses, ",")), orDash(strings.Join(prefixes, ",")))
	}
}

func faultTable(faults []api.Fault) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		row(w, "ACTION", "ERRORS", "LATENCY", "VISIBILITY LAG")
		for _, f := range faults {
			var errs []string
			if f.ErrorRate > 0 {
				errs = append(errs, f.ErrorCode+" "+strconv.FormatFloat(f.ErrorRate, 'g', -1, 64))
			}
			for _, e := range f.Errors {
				errs = append(errs, e.Code+" "+strconv.FormatFloat(e.Rate, 'g', -1, 64))
			}
			row(w, f.Action, orDash(strings.Join(errs, ", ")),
				(time.Duration(f.LatencyMillis) * time.Millisecond).String(),
				(time.Duration(f.VisibilityLagMillis) * time.Millisecond).String())
		}
	}
}

func tagsString(tags []api.Tag) string {
	parts := make([]string, 0, len(tags))
	for _, t := range tags {
		parts = append(parts, t.Key+"="+t.Value)
	}
	return orDash(strings.Join(parts, ","))
}

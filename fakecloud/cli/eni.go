package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/client"
)

func newENICmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "eni", Short: "Manage network interfaces, their addresses and prefixes"}
	cmd.AddCommand(eniCreateCmd(g), eniAttachCmd(g), eniDetachCmd(g), eniDeleteCmd(g), eniListCmd(g),
		eniAssignIPsCmd(g), eniAssignPrefixesCmd(g), eniUnassignCmd(g), eniSourceDestCmd(g))
	return cmd
}

func eniCreateCmd(g *globals) *cobra.Command {
	var subnet, desc, ip string
	var secondaries int
	c := &cobra.Command{
		Use: "create --subnet SUBNET", Short: "Create a network interface", Args: cobra.NoArgs,
		RunE: g.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			r, err := c.CreateNetworkInterface(ctx, &api.CreateNetworkInterfaceRequest{
				SubnetID: subnet, Description: desc, PrivateIPAddress: ip, SecondaryPrivateIPAddressCount: secondaries,
			})
			if err != nil {
				return err
			}
			return g.emit(r, eniTable([]api.NetworkInterface{r.NetworkInterface}))
		}),
	}
	c.Flags().StringVar(&subnet, "subnet", "", "subnet ID (required)")
	c.Flags().StringVar(&desc, "description", "", "free text")
	c.Flags().StringVar(&ip, "ip", "", "primary private IP (default: the subnet picks)")
	c.Flags().IntVar(&secondaries, "secondary-ips", 0, "secondary IPs to assign at creation")
	_ = c.MarkFlagRequired("subnet")
	return c
}

func eniAttachCmd(g *globals) *cobra.Command {
	var instance string
	var device int
	c := &cobra.Command{
		Use: "attach ENI --instance INSTANCE --device-index N", Short: "Attach an interface to an instance", Args: cobra.ExactArgs(1),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			r, err := c.AttachNetworkInterface(ctx, &api.AttachNetworkInterfaceRequest{NetworkInterfaceID: args[0], InstanceID: instance, DeviceIndex: device})
			if err != nil {
				return err
			}
			return g.done(r, "attached %s to %s at device %d as %s", args[0], instance, device, r.AttachmentID)
		}),
	}
	c.Flags().StringVar(&instance, "instance", "", "instance ID (required)")
	c.Flags().IntVar(&device, "device-index", 1, "device index (0 is the primary interface's)")
	_ = c.MarkFlagRequired("instance")
	return c
}

func eniDetachCmd(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use: "detach ATTACHMENT [--force]", Short: "Detach an interface (by attachment ID)", Args: cobra.ExactArgs(1),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			r, err := c.DetachNetworkInterface(ctx, &api.DetachNetworkInterfaceRequest{AttachmentID: args[0], Force: force})
			if err != nil {
				return err
			}
			return g.done(r, "detaching %s", args[0])
		}),
	}
	c.Flags().BoolVar(&force, "force", false, "detach at once, skipping the detaching state")
	return c
}

func eniDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "delete ENI...", Short: "Delete interfaces (detach them first)", Args: cobra.MinimumNArgs(1),
		RunE: g.deleteEach(func(ctx context.Context, c *client.Client, id string) (any, error) {
			return c.DeleteNetworkInterface(ctx, &api.DeleteNetworkInterfaceRequest{NetworkInterfaceID: id})
		}),
	}
}

func eniListCmd(g *globals) *cobra.Command {
	var instance, subnet string
	c := &cobra.Command{
		Use: "list [--instance INSTANCE] [--subnet SUBNET] [ENI...]", Short: "List interfaces",
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			req := &api.DescribeNetworkInterfacesRequest{NetworkInterfaceIDs: args}
			req.Filters = append(filter("attachment.instance-id", instance), filter("subnet-id", subnet)...)
			r, err := c.DescribeNetworkInterfaces(ctx, req)
			if err != nil {
				return err
			}
			return g.emit(r, eniTable(r.NetworkInterfaces))
		}),
	}
	c.Flags().StringVar(&instance, "instance", "", "only the interfaces attached to this instance")
	c.Flags().StringVar(&subnet, "subnet", "", "only the interfaces of this subnet")
	return c
}

func eniAssignIPsCmd(g *globals) *cobra.Command {
	var count int
	var ips []string
	c := &cobra.Command{
		Use: "assign-ips ENI (--count N | --ip ADDRESS...)", Short: "Assign secondary private IPv4 addresses", Args: cobra.ExactArgs(1),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			return g.assign(ctx, c, &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: args[0], SecondaryPrivateIPAddressCount: count, PrivateIPAddresses: ips})
		}),
	}
	c.Flags().IntVar(&count, "count", 0, "how many addresses the subnet picks")
	c.Flags().StringSliceVar(&ips, "ip", nil, "explicit addresses (repeatable or comma-separated)")
	c.MarkFlagsMutuallyExclusive("count", "ip")
	c.MarkFlagsOneRequired("count", "ip")
	return c
}

func eniAssignPrefixesCmd(g *globals) *cobra.Command {
	var count int
	var prefixes []string
	c := &cobra.Command{
		Use: "assign-prefixes ENI (--count N | --prefix CIDR...)", Short: "Delegate IPv4 /28 prefixes", Args: cobra.ExactArgs(1),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			return g.assign(ctx, c, &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: args[0], Ipv4PrefixCount: count, Ipv4Prefixes: prefixes})
		}),
	}
	c.Flags().IntVar(&count, "count", 0, "how many /28 prefixes the subnet picks")
	c.Flags().StringSliceVar(&prefixes, "prefix", nil, "explicit /28 prefixes")
	c.MarkFlagsMutuallyExclusive("count", "prefix")
	c.MarkFlagsOneRequired("count", "prefix")
	return c
}

func (g *globals) assign(ctx context.Context, c *client.Client, req *api.AssignPrivateIPAddressesRequest) error {
	r, err := c.AssignPrivateIPAddresses(ctx, req)
	if err != nil {
		return err
	}
	return g.emit(r, assignTable(r))
}

func eniUnassignCmd(g *globals) *cobra.Command {
	var ips, prefixes []string
	c := &cobra.Command{
		Use: "unassign-ips ENI --ip ADDRESS... [--prefix CIDR...]", Short: "Release secondary addresses and prefixes", Args: cobra.ExactArgs(1),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			r, err := c.UnassignPrivateIPAddresses(ctx, &api.UnassignPrivateIPAddressesRequest{NetworkInterfaceID: args[0], PrivateIPAddresses: ips, Ipv4Prefixes: prefixes})
			if err != nil {
				return err
			}
			return g.done(r, "released %d addresses and %d prefixes from %s", len(ips), len(prefixes), args[0])
		}),
	}
	c.Flags().StringSliceVar(&ips, "ip", nil, "addresses to release")
	c.Flags().StringSliceVar(&prefixes, "prefix", nil, "prefixes to release")
	c.MarkFlagsOneRequired("ip", "prefix")
	return c
}

func eniSourceDestCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "set-source-dest-check ENI true|false", Short: "Turn the source/destination check on or off", Args: cobra.ExactArgs(2),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			on, err := strconv.ParseBool(args[1])
			if err != nil {
				return fmt.Errorf("source/dest check %q: use true or false", args[1])
			}
			r, err := c.ModifyNetworkInterfaceAttribute(ctx, &api.ModifyNetworkInterfaceAttributeRequest{NetworkInterfaceID: args[0], SourceDestCheck: &on})
			if err != nil {
				return err
			}
			return g.done(r, "source/dest check of %s is %v", args[0], on)
		}),
	}
}

package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/client"
)

func newVpcCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "vpc", Short: "Create, list and delete VPCs"}
	var cidr string
	var tags []string
	create := &cobra.Command{
		Use:   "create --cidr CIDR",
		Short: "Create a VPC",
		Args:  cobra.NoArgs,
		RunE: g.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			t, err := parseTags(tags)
			if err != nil {
				return err
			}
			r, err := c.CreateVpc(ctx, &api.CreateVpcRequest{CidrBlock: cidr, Tags: t})
			if err != nil {
				return err
			}
			return g.emit(r, vpcTable([]api.Vpc{r.Vpc}))
		}),
	}
	create.Flags().StringVar(&cidr, "cidr", "", "IPv4 CIDR block, /16 to /28 (required)")
	create.Flags().StringArrayVar(&tags, "tag", nil, "tag KEY=VALUE (repeatable)")
	_ = create.MarkFlagRequired("cidr")

	list := &cobra.Command{
		Use: "list", Short: "List VPCs", Args: cobra.NoArgs,
		RunE: g.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			r, err := c.DescribeVpcs(ctx, &api.DescribeVpcsRequest{})
			if err != nil {
				return err
			}
			return g.emit(r, vpcTable(r.Vpcs))
		}),
	}
	del := &cobra.Command{
		Use: "delete VPC...", Short: "Delete VPCs", Args: cobra.MinimumNArgs(1),
		RunE: g.deleteEach(func(ctx context.Context, c *client.Client, id string) (any, error) {
			return c.DeleteVpc(ctx, &api.DeleteVpcRequest{VpcID: id})
		}),
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

func newSubnetCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "subnet", Short: "Create, list and delete subnets"}
	var vpc, cidr, az string
	create := &cobra.Command{
		Use:   "create --vpc VPC --cidr CIDR [--az ZONE]",
		Short: "Create a subnet in a VPC",
		Args:  cobra.NoArgs,
		RunE: g.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			r, err := c.CreateSubnet(ctx, &api.CreateSubnetRequest{VpcID: vpc, CidrBlock: cidr, AvailabilityZone: az})
			if err != nil {
				return err
			}
			return g.emit(r, subnetTable([]api.Subnet{r.Subnet}))
		}),
	}
	create.Flags().StringVar(&vpc, "vpc", "", "VPC ID (required)")
	create.Flags().StringVar(&cidr, "cidr", "", "IPv4 CIDR block inside the VPC's (required)")
	create.Flags().StringVar(&az, "az", "", "availability zone (default the cloud's first)")
	_ = create.MarkFlagRequired("vpc")
	_ = create.MarkFlagRequired("cidr")

	var listVpc string
	list := &cobra.Command{
		Use: "list [--vpc VPC]", Short: "List subnets", Args: cobra.NoArgs,
		RunE: g.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			req := &api.DescribeSubnetsRequest{Filters: filter("vpc-id", listVpc)}
			r, err := c.DescribeSubnets(ctx, req)
			if err != nil {
				return err
			}
			return g.emit(r, subnetTable(r.Subnets))
		}),
	}
	list.Flags().StringVar(&listVpc, "vpc", "", "only the subnets of this VPC")
	del := &cobra.Command{
		Use: "delete SUBNET...", Short: "Delete subnets", Args: cobra.MinimumNArgs(1),
		RunE: g.deleteEach(func(ctx context.Context, c *client.Client, id string) (any, error) {
			return c.DeleteSubnet(ctx, &api.DeleteSubnetRequest{SubnetID: id})
		}),
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

func newInstanceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "instance", Short: "Run, list and terminate instances (nodes)"}
	var subnet, typ, ip string
	var count int
	var runTags []string
	run := &cobra.Command{
		Use:   "run --subnet SUBNET --type TYPE [--count N] [--tag KEY=VALUE]",
		Short: "Launch instances; each gets a primary interface and its own API token",
		Args:  cobra.NoArgs,
		RunE: g.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			tags, err := parseTags(runTags)
			if err != nil {
				return err
			}
			r, err := c.RunInstances(ctx, &api.RunInstancesRequest{SubnetID: subnet, InstanceType: typ, Count: count, PrivateIPAddress: ip, Tags: tags})
			if err != nil {
				return err
			}
			return g.emit(r, instanceTable(r.Instances, true))
		}),
	}
	run.Flags().StringVar(&subnet, "subnet", "", "subnet ID (required)")
	run.Flags().StringVar(&typ, "type", "", "instance type, see `fakecloud instance-types list` (required)")
	run.Flags().IntVar(&count, "count", 1, "how many instances")
	run.Flags().StringVar(&ip, "ip", "", "primary private IP (one instance only)")
	run.Flags().StringArrayVar(&runTags, "tag", nil, "tag KEY=VALUE (repeatable); Name=N is what serve --fabric-attach N=PATH can select")
	_ = run.MarkFlagRequired("subnet")
	_ = run.MarkFlagRequired("type")

	var listSubnet string
	list := &cobra.Command{
		Use: "list [--subnet SUBNET]", Short: "List instances", Args: cobra.NoArgs,
		RunE: g.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			r, err := c.DescribeInstances(ctx, &api.DescribeInstancesRequest{Filters: filter("subnet-id", listSubnet)})
			if err != nil {
				return err
			}
			return g.emit(r, instanceTable(r.Instances, false))
		}),
	}
	list.Flags().StringVar(&listSubnet, "subnet", "", "only the instances of this subnet")
	terminate := &cobra.Command{
		Use: "terminate INSTANCE...", Short: "Terminate instances, releasing their interfaces and addresses", Args: cobra.MinimumNArgs(1),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			r, err := c.TerminateInstances(ctx, &api.TerminateInstancesRequest{InstanceIDs: args})
			if err != nil {
				return err
			}
			return g.done(r, "terminated %s", strings.Join(r.TerminatingInstances, " "))
		}),
	}
	cmd.AddCommand(run, list, terminate)
	return cmd
}

func newInstanceTypesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "instance-types", Short: "Show the instance types and their network limits"}
	cmd.AddCommand(&cobra.Command{
		Use: "list [TYPE...]", Short: "List instance types with interfaces, IPv4 per interface and max pods",
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			r, err := c.DescribeInstanceTypes(ctx, &api.DescribeInstanceTypesRequest{InstanceTypes: args})
			if err != nil {
				return err
			}
			return g.emit(r, instanceTypeTable(r.InstanceTypes))
		}),
	})
	return cmd
}

// filter is a one-value filter, or none when value is empty.
func filter(name, value string) []api.Filter {
	if value == "" {
		return nil
	}
	return []api.Filter{{Name: name, Values: []string{value}}}
}

func parseTags(raw []string) ([]api.Tag, error) {
	var tags []api.Tag
	for _, kv := range raw {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("tag %q: use KEY=VALUE", kv)
		}
		tags = append(tags, api.Tag{Key: k, Value: v})
	}
	return tags, nil
}

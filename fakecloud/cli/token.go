package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/client"
	"github.com/flatnet/flatnet/internal/privfile"
)

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Load-balancer tokens: what a load balancer controller gets instead of the admin token (admin)",
	}
	var description, tokenOut, awsOut string
	create := &cobra.Command{
		Use:   "create-lb [--description D] [--token-out FILE] [--aws-credentials-out FILE]",
		Short: "Create a load-balancer token and its AWS key pair",
		Long: `Create a load-balancer token: it may call the load balancer, target group, listener, rule, tag
and certificate actions, DescribeSubnets and the load balancer side of GetSnapshot and
GetChanges, through the JSON API (the token) and the AWS front end (its key pair), and nothing
else. The secrets are answered once: --token-out and --aws-credentials-out write them to new
files (0600; an existing file is refused) and keep them off the output.`,
		Args: cobra.NoArgs,
		RunE: g.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			r, err := c.CreateLoadBalancerToken(ctx, &api.CreateLoadBalancerTokenRequest{Description: description})
			if err != nil {
				return err
			}
			t := r.LoadBalancerToken
			if tokenOut != "" {
				if err := privfile.Create(tokenOut, []byte(t.Token+"\n")); err != nil {
					return fmt.Errorf("--token-out: %w (token %s was created: delete it with fakecloud token delete-lb)", err, t.TokenID)
				}
				r.LoadBalancerToken.Token = ""
			}
			if awsOut != "" {
				file := fmt.Sprintf("# fakecloud load-balancer token %s (fakecloud token create-lb).\n[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", t.TokenID, t.AccessKeyID, t.SecretAccessKey)
				if err := privfile.Create(awsOut, []byte(file)); err != nil {
					return fmt.Errorf("--aws-credentials-out: %w (token %s was created: delete it with fakecloud token delete-lb)", err, t.TokenID)
				}
				r.LoadBalancerToken.SecretAccessKey = ""
			}
			return g.emit(r, lbTokenTable([]api.LoadBalancerToken{r.LoadBalancerToken}))
		}),
	}
	create.Flags().StringVar(&description, "description", "", "what the token is for")
	create.Flags().StringVar(&tokenOut, "token-out", "", "write the token to this new file instead of the output")
	create.Flags().StringVar(&awsOut, "aws-credentials-out", "", "write the AWS key pair, as a shared-credentials file, to this new file instead of the output")

	list := &cobra.Command{
		Use: "list-lb", Short: "List the load-balancer tokens (without their secrets)", Args: cobra.NoArgs,
		RunE: g.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			r, err := c.DescribeLoadBalancerTokens(ctx, nil)
			if err != nil {
				return err
			}
			return g.emit(r, lbTokenTable(r.LoadBalancerTokens))
		}),
	}
	del := &cobra.Command{
		Use: "delete-lb TOKEN_ID...", Short: "Revoke load-balancer tokens", Args: cobra.MinimumNArgs(1),
		RunE: g.deleteEach(func(ctx context.Context, c *client.Client, id string) (any, error) {
			return c.DeleteLoadBalancerToken(ctx, &api.DeleteLoadBalancerTokenRequest{TokenID: id})
		}),
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

// lbTokenTable shows the secrets a create answer still carries.
func lbTokenTable(tokens []api.LoadBalancerToken) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		row(w, "TOKEN ID", "ACCESS KEY ID", "CREATED", "DESCRIPTION", "TOKEN", "SECRET ACCESS KEY")
		for _, t := range tokens {
			row(w, t.TokenID, t.AccessKeyID, t.CreateTime.Format(time.RFC3339), orDash(t.Description), orDash(t.Token), orDash(t.SecretAccessKey))
		}
	}
}

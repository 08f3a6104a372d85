package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/client"
)

func newFaultCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "fault", Short: "Inject errors, latency and visibility lag (admin)"}
	var f api.Fault
	var latency, lag time.Duration
	var seed int64
	var extra []string
	set := &cobra.Command{
		Use:   "set --action ACTION [--error-rate R --error-code CODE --latency D --visibility-lag D --seed N]",
		Short: "Make an action (or * for all) misbehave; replaces that action's fault",
		Args:  cobra.NoArgs,
		RunE: g.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			f.LatencyMillis, f.VisibilityLagMillis = int(latency.Milliseconds()), int(lag.Milliseconds())
			errs, err := parseFaultErrors(extra)
			if err != nil {
				return err
			}
			f.Errors = errs
			r, err := c.SetFault(ctx, &api.SetFaultRequest{Fault: f, Seed: seed})
			if err != nil {
				return err
			}
			return g.done(r, "fault set on %s", f.Action)
		}),
	}
	set.Flags().StringVar(&f.Action, "action", "", "API action, or * for every action (required)")
	set.Flags().Float64Var(&f.ErrorRate, "error-rate", 0, "fraction of calls that fail, 0 to 1")
	set.Flags().StringVar(&f.ErrorCode, "error-code", "", "code of the injected error (default InternalError)")
	set.Flags().StringArrayVar(&extra, "error", nil, "further injected codes with their rates, e.g. --error InternalError=0.02 (rates add up to at most 1)")
	set.Flags().BoolVar(&f.AfterCommit, "after-commit", false, "injected errors answer calls that were carried out (the reply is lost, the change is made)")
	set.Flags().DurationVar(&latency, "latency", 0, "added to every call, e.g. 50ms")
	set.Flags().DurationVar(&lag, "visibility-lag", 0, "new interfaces and addresses stay invisible this long, e.g. 2s")
	set.Flags().Int64Var(&seed, "seed", 0, "reseed the fault random source for a reproducible run")
	_ = set.MarkFlagRequired("action")

	list := &cobra.Command{
		Use: "list", Short: "List the faults in force", Args: cobra.NoArgs,
		RunE: g.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			r, err := c.ListFaults(ctx, nil)
			if err != nil {
				return err
			}
			return g.emit(r, faultTable(r.Faults))
		}),
	}
	var clearAction string
	clearCmd := &cobra.Command{
		Use: "clear [--action ACTION]", Short: "Clear one action's fault, or all", Args: cobra.NoArgs,
		RunE: g.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			r, err := c.ClearFaults(ctx, &api.ClearFaultsRequest{Action: clearAction})
			if err != nil {
				return err
			}
			if clearAction == "" {
				return g.done(r, "all faults cleared")
			}
			return g.done(r, "fault on %s cleared", clearAction)
		}),
	}
	clearCmd.Flags().StringVar(&clearAction, "action", "", "the action whose fault to clear (default all)")
	cmd.AddCommand(set, list, clearCmd)
	return cmd
}

// parseFaultErrors reads --error CODE=RATE values.
func parseFaultErrors(vals []string) ([]api.FaultError, error) {
	var out []api.FaultError
	for _, v := range vals {
		code, rate, ok := strings.Cut(v, "=")
		r, err := strconv.ParseFloat(rate, 64)
		if !ok || code == "" || err != nil {
			return nil, fmt.Errorf("--error %q: write CODE=RATE, e.g. InternalError=0.02", v)
		}
		out = append(out, api.FaultError{Code: code, Rate: r})
	}
	return out, nil
}

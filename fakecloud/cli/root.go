package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/flatnet/flatnet/fakecloud/client"
	"github.com/flatnet/flatnet/internal/privfile"
)

// Environment variables that stand in for the global flags.
const (
	EnvEndpoint = "FAKECLOUD_ENDPOINT"
	EnvToken    = "FAKECLOUD_TOKEN"
	// EnvAdminToken gives serve its admin token (the other way is --admin-token-file).
	EnvAdminToken = "FAKECLOUD_ADMIN_TOKEN"
)

// DefaultListen is where `fakecloud serve` listens, and so the endpoint the other commands call.
const DefaultListen = "127.0.0.1:7474"

// DefaultRuntimeDir is fakecloud's private runtime directory: $XDG_RUNTIME_DIR/fakecloud, else
// fakecloud-UID in $TMPDIR (or /tmp). Serve creates it 0700 and refuses it, and the client
// commands ignore it, when another user owns it or group or others may open it.
func DefaultRuntimeDir() string { return privfile.RuntimeDir("fakecloud") }

// DefaultAdminTokenFile is where `fakecloud serve` keeps a generated admin token when told
// nothing else, and where the other commands look for a token when given none.
func DefaultAdminTokenFile() string { return filepath.Join(DefaultRuntimeDir(), "admin-token") }

// readDefaultToken reads the default admin token file after checking that its directory and the
// file itself are private (privfile): a token planted by another user is refused, not trusted.
func readDefaultToken() (string, error) {
	path := DefaultAdminTokenFile()
	if err := privfile.CheckDir(filepath.Dir(path)); err != nil {
		return "", fmt.Errorf("the default admin token's directory: %w", err)
	}
	raw, err := privfile.Read(path)
	if err != nil {
		return "", fmt.Errorf("the default admin token: %w", err)
	}
	return strings.TrimSpace(string(raw)), nil
}

// Main runs the command line with the process's arguments and returns the exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Execute(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	return 0
}

// Execute runs the command line with args, writing to stdout and stderr.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// globals are the flags every client command shares.
type globals struct {
	endpoint  string
	token     string
	tokenFile string
	output    string
	stdout    io.Writer
	stderr    io.Writer
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "fakecloud",
		Short: "An emulated VPC cloud: serve it, or drive it resource by resource",
		Long: `fakecloud emulates an EC2-like VPC cloud: VPCs, subnets, instances and network
interfaces with real limits, throttling, fault injection and a change stream.

  fakecloud serve                          run the cloud (prints where its admin token is)
  fakecloud vpc create --cidr 10.0.0.0/16  then subnet, instance, eni, fault ...

Client commands call --endpoint (or $` + EnvEndpoint + `) with the token in --token-file (or $` + EnvToken + `;
failing both, the token in ` + DefaultAdminTokenFile() + ` if serve wrote one there).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if g.output != "table" && g.output != "json" {
				return fmt.Errorf("unknown output format %q: use -o table or -o json", g.output)
			}
			if g.tokenFile != "" {
				raw, err := os.ReadFile(g.tokenFile)
				if err != nil {
					return fmt.Errorf("--token-file: %w", err)
				}
				if g.token = strings.TrimSpace(string(raw)); g.token == "" {
					return fmt.Errorf("--token-file %s is empty", g.tokenFile)
				}
			}
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.endpoint, "endpoint", envOr(EnvEndpoint, "http://"+DefaultListen), "fakecloud API endpoint (env "+EnvEndpoint+")")
	g.token = os.Getenv(EnvToken)
	pf.StringVar(&g.tokenFile, "token-file", "", "file holding the admin, instance or load-balancer token (default $"+EnvToken+")")
	removedFlag(pf, "token", "a token on the command line is visible to every user in /proc/<pid>/cmdline: use --token-file or $"+EnvToken)
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table or json")

	root.AddCommand(newServeCmd(g), newVpcCmd(g), newSubnetCmd(g), newInstanceCmd(g),
		newInstanceTypesCmd(g), newENICmd(g), newFaultCmd(g), newFabricCmd(g), newLBCmd(g), newTGCmd(g), newCertCmd(g), newTokenCmd(g))
	return root
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// client returns a client for the global endpoint and token.
func (g *globals) client() (*client.Client, error) {
	token, err := g.resolveToken()
	if err != nil {
		return nil, err
	}
	return client.New(g.endpoint, token), nil
}

// errNoToken is what a client command without any token says.
var errNoToken = errors.New("no token: pass --token-file, set " + EnvToken + ", or run `fakecloud serve` on this machine first")

// resolveToken is --token-file's, else $FAKECLOUD_TOKEN, else the token serve wrote to the default file.
func (g *globals) resolveToken() (string, error) {
	token := g.token
	if token == "" {
		t, err := readDefaultToken()
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		token = t
	}
	if token == "" {
		return "", errNoToken
	}
	return token, nil
}

// withClient adapts a command body that needs a client.
func (g *globals) withClient(run func(ctx context.Context, c *client.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := g.client()
		if err != nil {
			return err
		}
		return run(cmd.Context(), c, args)
	}
}

// deleteEach adapts a command that deletes every resource named by its arguments, one call each,
// stopping at the first failure.
func (g *globals) deleteEach(del func(ctx context.Context, c *client.Client, id string) (any, error)) func(*cobra.Command, []string) error {
	return g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
		for _, id := range args {
			r, err := del(ctx, c, id)
			if err != nil {
				return err
			}
			if err := g.done(r, "deleted %s", id); err != nil {
				return err
			}
		}
		return nil
	})
}

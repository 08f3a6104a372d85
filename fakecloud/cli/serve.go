package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/flatnet/flatnet/fakecloud/awsapi/creds"
	"github.com/flatnet/flatnet/fakecloud/internal/state"
	"github.com/flatnet/flatnet/fakecloud/server"
	"github.com/flatnet/flatnet/internal/httpserve"
	"github.com/flatnet/flatnet/internal/privfile"
)

// serveOptions are the flags of `fakecloud serve`.
type serveOptions struct {
	listen         string
	adminToken     string
	adminTokenFile string
	awsCredsFile   string
	stateFile      string
	attachDelay    time.Duration
	throttle       bool
	logLevel       string
	faultSeed      int64
	albLimits      []string
	enisPerInst    int
	fabric         fabricOptions
}

// shutdownGrace bounds how long in-flight requests may take to finish on SIGTERM.
const shutdownGrace = 10 * time.Second

func newServeCmd(g *globals) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the fakecloud API server",
		Long: `Run the fakecloud API server until SIGTERM or SIGINT.

The admin token comes from $` + EnvAdminToken + `, or from --admin-token-file (generated and written
there if the file does not exist yet); with neither, one is generated and written to
` + DefaultAdminTokenFile() + `, where the client commands find it. That directory is
fakecloud's private runtime directory ($XDG_RUNTIME_DIR/fakecloud, else fakecloud-UID in
$TMPDIR): serve creates it 0700 and refuses it, or a token in it, when another user owns it,
group or others may open it, or it is a symbolic link.

The same listener serves the EC2 and ELBv2 Query APIs to AWS clients at POST / (see
docs/fakecloud-aws.md). The administrator's AWS keys are an AWS shared-credentials file,
--aws-credentials-file (generated if missing; default: fakecloud-aws-credentials next to the
admin token file):

  AWS_SHARED_CREDENTIALS_FILE=FILE aws --endpoint-url http://ADDR --region us-east-1 ec2 describe-network-interfaces`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), o, g.stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", DefaultListen, "address to listen on (loopback by default)")
	o.adminToken = os.Getenv(EnvAdminToken)
	removedFlag(f, "admin-token", "a token on the command line is visible to every user in /proc/<pid>/cmdline: use --admin-token-file or $"+EnvAdminToken)
	f.StringVar(&o.adminTokenFile, "admin-token-file", "", "file holding the admin token (created with a new token if missing)")
	f.StringVar(&o.awsCredsFile, "aws-credentials-file", "", "the administrator's AWS keys for the EC2/ELBv2 API, as an AWS shared-credentials file, created (0600) with new keys if missing (default: fakecloud-aws-credentials next to the admin token file)")
	f.StringVar(&o.stateFile, "state-file", "", "make every acknowledged change durable in this file")
	f.DurationVar(&o.attachDelay, "attach-delay", 0, "how long attach and detach stay in their transitional states")
	f.BoolVar(&o.throttle, "throttle", true, "throttle requests per caller and action like a real cloud")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.Int64Var(&o.faultSeed, "fault-seed", 0, "seed of fault injection (0: random; SetFault can reseed)")
	f.StringArrayVar(&o.albLimits, "alb-limit", nil, "raise or lower an application load balancer quota, NAME=N (repeatable): "+strings.Join(albLimitNames(), ", "))
	f.IntVar(&o.enisPerInst, "interfaces-per-instance", state.DefaultInterfacesPerInstance, "how many network interfaces one instance may create through its own token (NetworkInterfaceLimitExceeded beyond)")
	o.fabric.addFlags(f)
	return cmd
}

func runServe(ctx context.Context, o *serveOptions, stderr io.Writer) error {
	log, err := newLogger(o.logLevel, stderr)
	if err != nil {
		return err
	}
	token, err := adminToken(o, log)
	if err != nil {
		return err
	}
	awsKey, err := awsAdminKey(o, log)
	if err != nil {
		return err
	}
	limits, err := parseALBLimits(o.albLimits)
	if err != nil {
		return err
	}
	if o.enisPerInst < 1 {
		return fmt.Errorf("--interfaces-per-instance %d: give at least 1", o.enisPerInst)
	}
	// With a data plane, load balancers are provisioning until it has programmed them.
	st, err := state.Open(state.Config{StateFile: o.stateFile, AttachDelay: o.attachDelay, Logger: log, DataPlane: o.fabric.mode != fabricNone, ALBLimits: limits, InterfacesPerInstance: o.enisPerInst})
	if err != nil {
		return fmt.Errorf("open state: %w", err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("close state", "err", err)
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := newServer(o, st, token, awsKey, log, reg)
	if err != nil {
		return err
	}
	stopPlanes, err := startDataPlanes(ctx, st, srv, o, log, reg)
	if err != nil {
		return err
	}
	defer stopPlanes()
	// The fabric's attachments are reported beside the API (GET /fabric/attachments).
	return listenAndServe(ctx, o.listen, srv, o.fabric.attachmentsHandler(srv, token), httpserve.Default, log)
}

func newServer(o *serveOptions, st *state.Store, token string, awsKey server.AWSKey, log *slog.Logger, reg *prometheus.Registry) (*server.Server, error) {
	srv, err := server.New(server.Config{
		Store:      st,
		AdminToken: token,
		AWSKeys:    []server.AWSKey{awsKey},
		Throttle:   server.ThrottleConfig{Disabled: !o.throttle},
		FaultSeed:  o.faultSeed,
		Logger:     log,
		Registry:   reg,
	})
	if err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	return srv, nil
}

// startDataPlanes starts what runs beside the API on the same store (the VPC fabric, with
// --fabric netns) and returns how to stop it.
func startDataPlanes(ctx context.Context, st *state.Store, srv *server.Server, o *serveOptions, log *slog.Logger, reg prometheus.Registerer) (stop func(), err error) {
	return o.fabric.start(ctx, st, srv, log, reg)
}

// listenAndServe serves h (srv behind what serve adds to it) until ctx ends, then shuts down
// gracefully.
func listenAndServe(ctx context.Context, addr string, srv *server.Server, h http.Handler, to httpserve.Timeouts, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	// Every timeout is set (httpserve); GetChanges, the long poll, moves its own write deadline.
	hs := httpserve.New(h, to)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("fakecloud serving", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	srv.Close() // ends long polls so that Shutdown need not wait for them
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// adminToken resolves the admin token from the flags, generating and saving one if need be.
// The default file lives in the private runtime directory and is read and created only through
// privfile, so a file another user planted there is refused; a file named by --admin-token-file
// is the operator's choice and read as it is.
func adminToken(o *serveOptions, log *slog.Logger) (string, error) {
	if o.adminToken != "" {
		return o.adminToken, nil
	}
	if o.adminTokenFile == "" {
		return defaultAdminToken(log)
	}
	path := o.adminTokenFile
	raw, err := os.ReadFile(path)
	switch {
	case err == nil && strings.TrimSpace(string(raw)) != "":
		log.Info("admin token read", "file", path)
		return strings.TrimSpace(string(raw)), nil
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("read admin token file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create admin token directory: %w", err)
	}
	token := newAdminToken()
	if err == nil { // an empty file the operator made for us
		err = os.WriteFile(path, []byte(token+"\n"), 0o600)
	} else {
		err = privfile.Create(path, []byte(token+"\n"))
	}
	if err != nil {
		return "", fmt.Errorf("write admin token file: %w", err)
	}
	log.Info("admin token generated", "file", path, "hint", "export "+EnvToken+"=$(cat "+path+")")
	return token, nil
}

// defaultAdminToken reads the token in the private runtime directory, or creates the directory
// and a new token (O_EXCL|O_NOFOLLOW: a second server starting at once reads the first's).
func defaultAdminToken(log *slog.Logger) (string, error) {
	path := DefaultAdminTokenFile()
	if err := privfile.EnsureDir(filepath.Dir(path)); err != nil {
		return "", fmt.Errorf("fakecloud's runtime directory (or pass --admin-token-file): %w", err)
	}
	token, err := readDefaultToken()
	switch {
	case err == nil && token != "":
		log.Info("admin token read", "file", path)
		return token, nil
	case err == nil:
		return "", fmt.Errorf("the default admin token file %s is empty: remove it and serve makes a new token", path)
	case !errors.Is(err, os.ErrNotExist):
		return "", err
	}
	token = newAdminToken()
	if err := privfile.Create(path, []byte(token+"\n")); errors.Is(err, os.ErrExist) {
		return defaultAdminToken(log) // another serve won the race: use its token
	} else if err != nil {
		return "", fmt.Errorf("write the default admin token file: %w", err)
	}
	log.Info("admin token generated", "file", path, "hint", "export "+EnvToken+"=$(cat "+path+")")
	return token, nil
}

// awsAdminKey reads the administrator's AWS keys from --aws-credentials-file (by default next to
// the admin token file), generating and saving new ones if the file does not exist.
func awsAdminKey(o *serveOptions, log *slog.Logger) (server.AWSKey, error) {
	path := o.awsCredsFile
	if path == "" {
		tokenFile := o.adminTokenFile
		if tokenFile == "" {
			tokenFile = DefaultAdminTokenFile()
		}
		path = filepath.Join(filepath.Dir(tokenFile), "fakecloud-aws-credentials")
	}
	key, created, err := creds.LoadOrCreateAdminFile(path)
	if err != nil {
		return server.AWSKey{}, err
	}
	if created {
		log.Info("AWS credentials generated", "file", path, "access_key_id", key.AccessKeyID, "hint", "export AWS_SHARED_CREDENTIALS_FILE="+path)
	} else {
		log.Info("AWS credentials read", "file", path, "access_key_id", key.AccessKeyID)
	}
	return key, nil
}

func newAdminToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return "fca-" + hex.EncodeToString(b)
}

package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/awsapi"
	"github.com/flatnet/flatnet/fakecloud/awsapi/creds"
	"github.com/flatnet/flatnet/fakecloud/internal/fault"
	"github.com/flatnet/flatnet/fakecloud/internal/state"
	"github.com/flatnet/flatnet/fakecloud/internal/throttle"
)

// ThrottleConfig configures request throttling; the zero value applies the cloud's defaults.
// It is an alias so that packages outside fakecloud can fill it in.
type ThrottleConfig = throttle.Config

// ThrottleLimit is one token bucket's shape: Burst tokens, refilled at Rate per second.
type ThrottleLimit = throttle.Limit

// StoreConfig configures the state store (state file, attach delay, logger).
type StoreConfig = state.Config

// OpenStore opens fakecloud's state store, for callers outside fakecloud that run it in-process.
// Close it after the server is done.
func OpenStore(cfg StoreConfig) (*state.Store, error) {
	st, err := state.Open(cfg)
	if err != nil {
		return nil, fmt.Errorf("open fakecloud state: %w", err)
	}
	return st, nil
}

// DefaultMaxWait caps how long a GetChanges call waits for a change.
const DefaultMaxWait = 30 * time.Second

// Config configures a Server. Store and AdminToken are required.
type Config struct {
	Store *state.Store
	// AdminToken is the bearer token of the administrator.
	AdminToken string
	Throttle   ThrottleConfig
	// FaultSeed seeds fault injection until a SetFault call reseeds it; 0 picks a random seed.
	FaultSeed int64
	// Clock is the time of calls as the store and the throttle see it; default time.Now.
	Clock func() time.Time
	// MaxWait caps GetChanges waits; default DefaultMaxWait.
	MaxWait time.Duration
	// Logger gets one line per request; default discards.
	Logger *slog.Logger
	// Registry gets the server's metrics and is what /metrics serves; default a new registry.
	Registry *prometheus.Registry
	// AWSKeys are the administrator's AWS access keys for the AWS front end (EC2 and ELBv2
	// Query APIs at POST /); instances sign with credentials derived from their tokens.
	AWSKeys []AWSKey
}

// AWSKey is an AWS access key pair (creds.Key), an alias so that packages outside fakecloud can
// fill Config in.
type AWSKey = creds.Key

// Server is fakecloud's API as an http.Handler.
type Server struct {
	store      *state.Store
	adminToken []byte
	clock      func() time.Time
	maxWait    time.Duration
	log        *slog.Logger
	limiter    *throttle.Limiter
	faults     *fault.Injector
	metrics    *metrics
	endpoints  map[string]endpoint
	mux        *http.ServeMux
	aws        *awsapi.Handler

	idPrefix string
	idSeq    atomic.Uint64

	// closing ends long polls when the server shuts down.
	closing context.Context
	close   context.CancelFunc
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server config: a store is required")
	}
	if cfg.AdminToken == "" {
		return nil, errors.New("server config: an admin token is required")
	}
	if err := cfg.Throttle.Validate(); err != nil {
		return nil, fmt.Errorf("server config: %w", err)
	}
	cfg = withDefaults(cfg)
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("server config: %w", err)
	}
	s := &Server{
		store:      cfg.Store,
		adminToken: []byte(cfg.AdminToken),
		clock:      cfg.Clock,
		maxWait:    cfg.MaxWait,
		log:        cfg.Logger,
		limiter:    throttle.New(cfg.Throttle),
		metrics:    m,
		endpoints:  endpoints(),
		idPrefix:   randomHex(4),
	}
	s.faults = fault.New(s.faultableActions(), cfg.FaultSeed)
	if s.aws, err = awsapi.New(awsapi.Config{
		Backend: awsBackend{s}, AdminKeys: cfg.AWSKeys, LoadBalancerKey: cfg.Store.LoadBalancerKey, InstanceToken: cfg.Store.InstanceToken, Clock: cfg.Clock,
	}); err != nil {
		return nil, fmt.Errorf("server config: %w", err)
	}
	s.closing, s.close = context.WithCancel(context.Background())
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/healthz", serveHealthz)
	s.mux.Handle("/metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("/", s.serveNotFound)
	return s, nil
}

func withDefaults(cfg Config) Config {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.FaultSeed == 0 {
		cfg.FaultSeed = time.Now().UnixNano()
	}
	return cfg
}

// ServeHTTP serves the API, the AWS front end, /healthz and /metrics. API paths bypass the mux
// so that every API answer, even to a path the mux would clean and redirect, is JSON. AWS
// requests (POST / signed with SigV4 or form-encoded: awsapi.Match) go to the AWS front end.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if awsapi.Match(r) {
		s.aws.ServeHTTP(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		s.serveAPI(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Handler returns the server as an http.Handler.
func (s *Server) Handler() http.Handler { return s }

// Close ends the long polls in progress, so that an http.Server can shut down promptly. It does
// not close the store.
func (s *Server) Close() { s.close() }

func (s *Server) faultableActions() []string {
	out := slices.Clone(api.DataPlaneOperations)
	for name, ep := range s.endpoints {
		if !ep.control {
			out = append(out, name)
		}
	}
	return out
}

func serveHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

func (s *Server) serveNotFound(w http.ResponseWriter, r *http.Request) {
	id := s.nextRequestID()
	w.Header().Set(api.HeaderRequestID, id)
	e := api.Errorf(api.CodeInvalidAction, "no such path %q: the API is POST /api/<Action>, plus GET /healthz and GET /metrics", r.URL.Path)
	writeError(w, http.StatusNotFound, e, id)
}

func (s *Server) nextRequestID() string {
	return s.idPrefix + "-" + strconv.FormatUint(s.idSeq.Add(1), 10)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// DataPlaneFault draws the injected fault of a data-plane operation (api.DataPlane*): it waits
// out the fault's latency and returns the error to fail the operation with, or nil. The fabric
// asks before each such operation; a fault applies to the operation on every object.
func (s *Server) DataPlaneFault(op, _ string) error {
	d := s.faults.Decide(op)
	if d.Latency > 0 {
		select {
		case <-time.After(d.Latency):
		case <-s.closing.Done():
		}
	}
	if d.Err != nil {
		return d.Err
	}
	return nil
}

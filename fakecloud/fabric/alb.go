package fabric

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/fabric/l7"
	"github.com/flatnet/flatnet/internal/netns"
)

// albCloseTimeout bounds how long closing an engine lets its requests in flight finish: the
// fabric holds its lock meanwhile.
const albCloseTimeout = 2 * time.Second

// albRuntime is an application load balancer's data plane: an L7 engine whose sockets live in
// the load balancer's namespace, and the checker of its targets.
type albRuntime struct {
	id   string
	ns   string
	addr netip.Addr // the private address: the source of forwarded requests and checks
	ino  uint64     // the namespace the sockets were opened in (a recreated one has another)
	eng  *l7.Engine
	chk  *l7.Checker // nil without Config.Health
	reg  *trackedRegisterer
	// accessLog is where the engine's access log goes while it is on (accessOn): a file of
	// Config.AccessLogDir, or nil for the fabric's own log.
	accessOn  bool
	accessLog *accessLogFile
	// applied is the configuration the engine runs (nil before the first). A new one is
	// compared with it field by field: unlike hashing its encoding, a comparison allocates
	// nothing and stops at the first difference (with 1,000 rules, the hash's JSON took longer
	// than the engine's compilation).
	applied *l7.Config
}

// newALB starts an engine, serving nothing yet, for a load balancer whose base is ensured.
func (f *Fabric) newALB(lb *LB) (*albRuntime, error) {
	ns := LBNetns(f.cfg.Prefix, lb.ID)
	rt := &albRuntime{id: lb.ID, ns: ns, addr: lb.Addr.Addr(), ino: netnsIno(ns)}
	dial := dialFrom(ns, rt.addr)
	opts := l7.Options{
		// Every address of the namespace is the load balancer's (private and public VIP).
		Listen: func(port int) (net.Listener, error) {
			return listenIn(ns, net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
		},
		ListenPacket: func(port int) (net.PacketConn, error) {
			return listenPacketIn(ns, net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
		},
		Dial:           dial,
		Log:            f.log.With("lb", lb.ID),
		UDPIdleTimeout: f.cfg.albUDPIdleTimeout,
		UDPMaxFlows:    f.cfg.albUDPMaxFlows,
	}
	if f.cfg.Registerer != nil {
		rt.reg = &trackedRegisterer{Registerer: prometheus.WrapRegistererWith(prometheus.Labels{"lb": lb.ID}, f.cfg.Registerer)}
		opts.Registerer = rt.reg
	}
	eng, err := l7.New(opts)
	if err != nil {
		rt.reg.unregisterAll()
		return nil, fmt.Errorf("l7 engine of load balancer %s: %w", lb.ID, err)
	}
	rt.eng = eng
	if f.cfg.Health != nil {
		chk, err := l7.NewChecker(l7.CheckerOptions{Report: checkReports{f.cfg.Health}, Dial: dial, Log: f.log.With("lb", lb.ID)})
		if err != nil {
			rt.close()
			return nil, fmt.Errorf("target checker of load balancer %s: %w", lb.ID, err)
		}
		rt.chk = chk
	}
	return rt, nil
}

// close stops the checks and the engine (requests in flight get albCloseTimeout) and drops
// the engine's metrics. The sockets it closes are what keeps a deleted namespace alive.
func (rt *albRuntime) close() {
	if rt.chk != nil {
		rt.chk.Close()
	}
	if rt.eng != nil {
		ctx, cancel := context.WithTimeout(context.Background(), albCloseTimeout)
		_ = rt.eng.Close(ctx) // writes the access log's queued lines
		cancel()
	}
	if rt.accessLog != nil {
		_ = rt.accessLog.Close()
	}
	rt.reg.unregisterAll()
}

// syncAccessLog turns the engine's access log on or off as the load balancer's attribute
// says. On, it writes JSON lines to Config.AccessLogDir/<id>.log (appended to, made 0640 and
// its directory 0750 when missing; rotated past Config.AccessLogMaxBytes), or to the fabric's
// log without an AccessLogDir. A file that cannot be opened or written leaves the load
// balancer active_impaired (routing traffic) until it can: its lines are lost meanwhile, and
// counted in the reason.
func (f *Fabric) syncAccessLog(rt *albRuntime, on bool) error {
	if on == rt.accessOn {
		if rt.accessLog != nil {
			if err := rt.accessLog.Err(); err != nil {
				return fmt.Errorf("load balancer %s: %w", rt.id, err)
			}
		}
		return nil
	}
	if !on {
		rt.eng.SetAccessLog(nil) // writes what was queued
		if rt.accessLog != nil {
			err := rt.accessLog.Close()
			rt.accessLog = nil
			if err != nil {
				f.log.Warn("closing an access log", "lb", rt.id, "err", err)
			}
		}
		rt.accessOn = false
		return nil
	}
	log := f.log.With("lb", rt.id, "log", "access")
	if dir := f.cfg.AccessLogDir; dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("load balancer %s: access log: %w", rt.id, err)
		}
		file, err := openAccessLog(filepath.Join(dir, rt.id+".log"), f.cfg.AccessLogMaxBytes, f.cfg.AccessLogKeep, f.kick)
		if err != nil {
			return fmt.Errorf("load balancer %s: access log: %w", rt.id, err)
		}
		rt.accessLog = file
		log = slog.New(slog.NewJSONHandler(file, nil)).With("lb", rt.id)
	}
	rt.eng.SetAccessLog(log)
	rt.accessOn = true
	return nil
}

// ReopenAccessLogs closes every access-log file and opens its path again, for an outside
// rotation that moved the files away (logrotate's create mode; fakecloud serve calls it on
// SIGHUP). A file that cannot be opened leaves its load balancer active_impaired until it
// can.
func (f *Fabric) ReopenAccessLogs() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for _, rt := range f.albs {
		if rt.accessLog == nil {
			continue
		}
		if err := rt.accessLog.Reopen(); err != nil {
			errs = append(errs, fmt.Errorf("load balancer %s: reopen the access log: %w", rt.id, err))
		}
	}
	return errors.Join(errs...)
}

// closeALBs closes the engines of load balancers that are no longer wanted as application
// ones or whose private address changed; it runs before the plan, so a namespace being deleted
// holds no socket of ours.
func (f *Fabric) closeALBs(desired *World) {
	for id, rt := range f.albs {
		if d := desired.LBs[id]; d == nil || !d.App || d.Addr.Addr() != rt.addr {
			rt.close()
			delete(f.albs, id)
		}
	}
}

// closeAllALBs closes every engine (the fabric stops).
func (f *Fabric) closeAllALBs() {
	for id, rt := range f.albs {
		rt.close()
		delete(f.albs, id)
	}
}

// syncALBs applies each application load balancer's configuration to its engine, once its base
// is ensured, and returns the load balancers whose engine runs their current configuration.
// An engine is started on first need and again when its namespace was recreated. A
// configuration that cannot be built or that the engine refuses fails the load balancer (the
// engine keeps serving the configuration it had); the next convergence tries again.
func (f *Fabric) syncALBs(snap *api.Snapshot, desired *World) (map[string]bool, error) {
	ix := desired.apps
	if ix == nil {
		i := indexALBs(snap)
		ix = &i
	}
	defer f.ruleRevs.forget(snap)
	current := map[string]bool{}
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(desired.LBs)) {
		d, a := desired.LBs[id], f.actual.LBs[id]
		if !d.App || a == nil || !a.Ready {
			continue
		}
		if rt := f.albs[id]; rt != nil && rt.ino != netnsIno(rt.ns) {
			f.log.Warn("namespace of application load balancer was recreated; restarting its engine", "lb", id)
			rt.close()
			delete(f.albs, id)
		}
		cfg, err := albConfig(id, *ix, f.cfg.Certificates, f.ruleRevs)
		if err != nil {
			err = fmt.Errorf("load balancer %s: %w", id, err)
			f.lbErrs[id] = err
			errs = append(errs, err)
			continue
		}
		if rt := f.albs[id]; rt == nil || rt.applied == nil || !rt.applied.Equal(cfg) {
			err = f.lbStep(id, opProgramLB, func() error { return f.applyALB(d, cfg) })
			if err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if err := f.syncAccessLog(f.albs[id], ix.accessLogs[id]); err != nil {
			// Traffic flows all the same: active_impaired, retried at the next convergence.
			f.lbImpaired[id] = err
			errs = append(errs, err)
		}
		current[id] = true
	}
	return current, errors.Join(errs...)
}

// applyALB hands cfg to the load balancer's engine, starting the engine if needed.
func (f *Fabric) applyALB(lb *LB, cfg l7.Config) error {
	rt := f.albs[lb.ID]
	if rt == nil {
		var err error
		if rt, err = f.newALB(lb); err != nil {
			return err
		}
		f.albs[lb.ID] = rt
	}
	if err := rt.eng.Apply(cfg); err != nil {
		return fmt.Errorf("load balancer %s: the L7 engine refused the configuration: %w", lb.ID, err)
	}
	rt.applied = &cfg
	f.startBusyPoll()
	return nil
}

// startBusyPoll gives the process's network poller its busy-poll time once, when an engine
// first serves: its listeners are open, so the runtime's epoll instance exists. A failure is
// logged and leaves flatnet_fabric_lb_busy_poll_microseconds at 0 (the engines work, sleeping
// as any process does); it is not retried until the fabric restarts.
func (f *Fabric) startBusyPoll() {
	if f.busyPoll <= 0 || f.busyPollSet {
		return
	}
	f.busyPollSet = true
	n, err := enableBusyPoll(f.busyPoll)
	if err != nil {
		f.log.Warn("application load balancers will not busy-poll their links", "err", err)
		return
	}
	f.metrics.busyPoll.Store(int64(f.busyPoll / time.Microsecond))
	f.log.Info("application load balancers busy-poll their links", "busy_poll", f.busyPoll, "epoll_instances", n)
}

// syncALBChecks makes each engine's checker probe the targets of its load balancer, while the
// load balancer runs its current configuration (no target turns healthy behind one that does
// not forward to it), and none otherwise.
func (f *Fabric) syncALBChecks(checks []Check, ready func(string) bool) {
	want := map[string][]l7.CheckTarget{}
	for _, c := range checks {
		if c.App && ready(c.LB) {
			want[c.LB] = append(want[c.LB], albCheckTarget(c, f.cfg.Certificates))
		}
	}
	for id, rt := range f.albs {
		if rt.chk == nil {
			continue
		}
		if err := rt.chk.Sync(want[id]); err != nil {
			f.log.Warn("some target checks of the application load balancer cannot run", "lb", id, "err", err)
		}
	}
}

// albCheckTarget is checkTarget with the group's client certificate, read through certs, and a
// TLS group's verification for its TLS checks. A certificate that cannot be read is left out:
// the engine's configuration, which needs it as well, reports why.
func albCheckTarget(c Check, certs CertificateSource) l7.CheckTarget {
	t := checkTarget(c)
	if c.TLSGroup && t.Check.Protocol == l7.HealthTLS {
		t.TLS = albBackendTLS(c.TLSVerification)
	}
	if c.ClientCertificateID == "" || certs == nil {
		return t
	}
	if kp, ok := certs.CertificateKeyPair(c.ClientCertificateID); ok {
		t.ClientCertPEM, t.ClientKeyPEM = []byte(kp.CertificatePem), []byte(kp.PrivateKeyPem)
	}
	return t
}

// dialFrom dials from inside a namespace, from src: the target sees the load balancer's
// private address as its peer (UDP flows too). The socket is made on a thread in the namespace and stays there.
func dialFrom(ns string, src netip.Addr) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := netns.Do(ns, func() error {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
			if network == "udp" || network == "udp4" {
				d.LocalAddr = &net.UDPAddr{IP: src.AsSlice()}
			}
			var err error
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// netnsIno identifies the namespace mounted at a name (0 if none).
func netnsIno(ns string) uint64 {
	var st unix.Stat_t
	if err := unix.Stat(netns.Path(ns), &st); err != nil {
		return 0
	}
	return st.Ino
}

// trackedRegisterer remembers what an engine registered, so closing the engine unregisters it
// and a later engine of the same load balancer can register again.
type trackedRegisterer struct {
	prometheus.Registerer
	mu sync.Mutex
	cs []prometheus.Collector
}

func (t *trackedRegisterer) Register(c prometheus.Collector) error {
	if err := t.Registerer.Register(c); err != nil {
		return err
	}
	t.mu.Lock()
	t.cs = append(t.cs, c)
	t.mu.Unlock()
	return nil
}

func (t *trackedRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := t.Register(c); err != nil {
			panic(err)
		}
	}
}

func (t *trackedRegisterer) unregisterAll() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.cs {
		t.Unregister(c)
	}
	t.cs = nil
}

package nodeagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

type probeKind string

const (
	readiness probeKind = "Readiness"
	liveness  probeKind = "Liveness"
	startup   probeKind = "Startup"
)

func (s *probeState) kill() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.killReason
}

func (s *probeState) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ready, s.started, s.killReason = false, false, ""
}

func (s *probeState) isStarted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// startProbes starts a goroutine per probe of the container; they end with the container.
func (w *podWorker) startProbes(ctx context.Context, pod *corev1.Pod, c *container) {
	ctx, cancel := context.WithCancel(ctx)
	c.probeCancel = cancel
	// The goroutines get the address and namespace by value: the sandbox record is the worker's.
	at := probeTarget{ip: w.sb.IPs[0], launch: c.launch, env: c.env}
	if c.spec.StartupProbe == nil {
		c.probes.mu.Lock()
		c.probes.started = true
		c.probes.mu.Unlock()
	} else if !c.probes.isStarted() { // an adopted container may have passed it already
		go w.probeLoop(ctx, pod, c, at, startup, c.spec.StartupProbe)
	}
	if c.spec.ReadinessProbe != nil {
		go w.probeLoop(ctx, pod, c, at, readiness, c.spec.ReadinessProbe)
	}
	if c.spec.LivenessProbe != nil {
		go w.probeLoop(ctx, pod, c, at, liveness, c.spec.LivenessProbe)
	}
}

// probeLoop runs one probe every period after the initial delay, applies the thresholds and
// pokes the worker when the outcome changes. Readiness and liveness wait for the startup probe.
func (w *podWorker) probeLoop(ctx context.Context, pod *corev1.Pod, c *container, at probeTarget, kind probeKind, p *corev1.Probe) {
	period := seconds(p.PeriodSeconds, 10)
	timeout := seconds(p.TimeoutSeconds, 1)
	success := int(max(p.SuccessThreshold, 1))
	failure := int(max(p.FailureThreshold, 1))
	if p.FailureThreshold == 0 {
		failure = 3
	}
	delay := time.Duration(p.InitialDelaySeconds) * time.Second
	var okRun, failRun int
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = period
		if kind != startup && !c.probes.isStarted() {
			delay = 100 * time.Millisecond
			continue
		}
		err := w.runProbe(ctx, c, at, p, timeout)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			okRun, failRun = okRun+1, 0
		} else {
			okRun, failRun = 0, failRun+1
			w.a.recorder.Eventf(pod, corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %v", kind, err)
		}
		changed := false
		c.probes.mu.Lock()
		if ctx.Err() != nil { // the container stopped meanwhile: its state was reset
			c.probes.mu.Unlock()
			return
		}
		switch kind {
		case readiness:
			if okRun >= success && !c.probes.ready {
				c.probes.ready, changed = true, true
			}
			if failRun >= failure && c.probes.ready {
				c.probes.ready, changed = false, true
			}
		case liveness, startup:
			if kind == startup && okRun >= success {
				c.probes.started, changed = true, true
			}
			if failRun >= failure && c.probes.killReason == "" {
				c.probes.killReason = fmt.Sprintf("failed %s probe", map[probeKind]string{liveness: "liveness", startup: "startup"}[kind])
				changed = true
			}
		}
		c.probes.mu.Unlock()
		if changed {
			w.poke()
		}
		if kind == startup && okRun >= success {
			return // the startup probe's job is done
		}
	}
}

// probeTarget is where a container's probes go.
type probeTarget struct {
	ip     string
	launch Launch
	env    []string
}

// runWithContext runs cmd in a process group of its own and returns its combined output. When
// ctx ends, the whole group is killed, not only cmd's process: a probe such as `sh -c "sleep
// 600"` would otherwise leave its sleep running after every timeout. What the command leaves
// running in its group when it exits is killed too: the node agent has no cgroup that would end
// a probe's processes with the container, as a container runtime's exec has.
//
// started, when not nil, is called once the process exists, before anything else: a command
// held by a start gate runs only once started has opened it. Its result, done, is called after
// the group has been killed; an error from started kills the group and is returned.
func runWithContext(ctx context.Context, cmd *exec.Cmd, started func(pid int) (done func(), err error)) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if cmd.WaitDelay == 0 {
		// A child left holding the output pipe must not keep Wait (and the probe) waiting.
		cmd.WaitDelay = 2 * time.Second
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Pgid = false, true, 0
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// The group's id is the leader's pid. It stays the group's while any member lives, so
	// killing it after the leader was reaped reaches only what the command left behind.
	killGroup := func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if started != nil {
		// Before Wait can reap the process: started may read its /proc entry.
		finish, err := started(cmd.Process.Pid)
		if finish != nil {
			defer finish() // deferred first, so it runs after every killGroup below
		}
		if err != nil {
			killGroup()
			_ = cmd.Wait()
			return nil, err
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		killGroup()
		return out.Bytes(), err
	case <-ctx.Done():
		killGroup()
		// The output is read only once Wait has returned: until then exec's copier may still
		// be writing into it (a data race the race detector caught).
		werr := <-done
		return out.Bytes(), fmt.Errorf("%w (command stopped: %w)", ctx.Err(), werr)
	}
}

func seconds(s, def int32) time.Duration {
	if s <= 0 {
		s = def
	}
	return time.Duration(s) * time.Second
}

// runProbe runs one probe: HTTP GET and TCP dial the pod's IP from the node's namespace, as the
// kubelet does; exec runs the command inside the pod's namespace.
func (w *podWorker) runProbe(ctx context.Context, c *container, at probeTarget, p *corev1.Probe, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ip := at.ip
	switch {
	case p.HTTPGet != nil:
		port, err := probePort(c.spec, p.HTTPGet.Port)
		if err != nil {
			return err
		}
		return probeHTTP(ctx, p.HTTPGet, ip, port)
	case p.TCPSocket != nil:
		port, err := probePort(c.spec, p.TCPSocket.Port)
		if err != nil {
			return err
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	case p.Exec != nil:
		if len(p.Exec.Command) == 0 {
			return errors.New("exec probe without a command")
		}
		// As the container runs: its namespace, root, mounts, identity and environment.
		l := at.launch
		l.Argv = p.Exec.Command
		// Held at a start gate until recorded: an agent killed while the command runs leaves
		// its successor the record of the group to end (probeRecords).
		cmd, gate, err := l.gatedCommand(w.a.self)
		if err != nil {
			return err
		}
		cmd.Env = at.env
		if len(cmd.Env) == 0 {
			cmd.Env = []string{"PATH=" + containerPath}
		}
		out, err := runWithContext(ctx, cmd, func(pid int) (func(), error) {
			gate.started()
			start, err := procStartTime(pid)
			if err != nil {
				gate.cancel()
				return nil, fmt.Errorf("exec probe process %d: %w", pid, err)
			}
			rec, err := w.a.probes.add(pid, start)
			if err != nil {
				gate.cancel()
				return nil, err
			}
			return func() { w.a.probes.remove(rec) }, gate.open()
		})
		if cmd.Process == nil {
			gate.cancel() // never started: the agent's ends of the pipe
		}
		if err != nil {
			return fmt.Errorf("command %q: %w: %s", p.Exec.Command, err, truncate(out, 200))
		}
		return nil
	case p.GRPC != nil:
		return errors.New("gRPC probes are not supported by the node agent: use httpGet, tcpSocket or exec")
	}
	return errors.New("probe without a handler: set httpGet, tcpSocket or exec")
}

func probeHTTP(ctx context.Context, g *corev1.HTTPGetAction, ip string, port int) error {
	if g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP {
		return fmt.Errorf("scheme %s is not supported by the node agent's probes: use HTTP", g.Scheme)
	}
	host := ip
	if g.Host != "" {
		host = g.Host
	}
	url := "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + g.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "kube-probe/flatnet")
	for _, h := range g.HTTPHeaders {
		if http.CanonicalHeaderKey(h.Name) == "Host" {
			req.Host = h.Value // net/http takes the Host header from here only
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	// A new transport per probe, as the kubelet does: no connection outlives a probe.
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 10*1024))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP probe failed with statuscode: %d: %s", resp.StatusCode, truncate(body, 200))
	}
	return nil
}

// probePort resolves a probe's port, a number or the name of one of the container's ports.
func probePort(c *corev1.Container, port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		if port.IntVal < 1 || port.IntVal > 65535 {
			return 0, fmt.Errorf("probe port %d: want 1 to 65535", port.IntVal)
		}
		return int(port.IntVal), nil
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("probe port %q: the container declares no port of that name", port.StrVal)
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

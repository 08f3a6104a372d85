package lbcontroller

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/flatnet/flatnet/lbcontroller/gateway"
)

// statusWriterProbe runs a statusWriter whose writes record the output's pass (passName) and
// fail while fail says so.
type statusWriterProbe struct {
	w       *statusWriter
	mu      sync.Mutex
	written []string
	fail    int           // the next fail writes fail
	block   chan struct{} // when set, a write waits for it
	entered chan string
}

func newStatusWriterProbe(t *testing.T) *statusWriterProbe {
	p := &statusWriterProbe{entered: make(chan string, 100)}
	p.w = newStatusWriter(func(ctx context.Context, out gateway.Output) error {
		p.entered <- passName(out)
		p.mu.Lock()
		block := p.block
		p.mu.Unlock()
		if block != nil {
			select {
			case <-block:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.written = append(p.written, passName(out))
		if p.fail > 0 {
			p.fail--
			return errors.New("the API server is away")
		}
		return nil
	}, logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.w.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

func (p *statusWriterProbe) submit(name string) <-chan struct{} {
	p.w.mu.Lock()
	idle := p.w.idle
	p.w.mu.Unlock()
	p.w.submit(gateway.Output{GatewayClasses: []gateway.GatewayClassStatus{{Name: name}}})
	return idle
}

func (p *statusWriterProbe) writes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.written)
}

func waitIdle(t *testing.T, idle <-chan struct{}) {
	t.Helper()
	select {
	case <-idle:
	case <-time.After(30 * time.Second):
		t.Fatal("the status writer never settled")
	}
}

// TestStatusWriterKeepsTheLatest: outputs handed over while a write runs are superseded by the
// latest; only it is written next.
func TestStatusWriterKeepsTheLatest(t *testing.T) {
	p := newStatusWriterProbe(t)
	p.block = make(chan struct{})
	p.submit("pass1")
	if got := <-p.entered; got != "pass1" {
		t.Fatalf("first write of %s, want pass1", got)
	}
	p.submit("pass2")
	idle := p.submit("pass3")
	close(p.block)
	waitIdle(t, idle)
	if got, want := p.writes(), []string{"pass1", "pass3"}; !slices.Equal(got, want) {
		t.Errorf("written %v, want %v (pass2 superseded by pass3)", got, want)
	}
}

// TestStatusWriterRetries: a failed write-back is tried again until it succeeds; a newer output
// arriving during the backoff is written instead of the failed one.
func TestStatusWriterRetries(t *testing.T) {
	p := newStatusWriterProbe(t)
	p.fail = 2
	waitIdle(t, p.submit("pass1"))
	if got, want := p.writes(), []string{"pass1", "pass1", "pass1"}; !slices.Equal(got, want) {
		t.Errorf("written %v, want %v (two failures, then success)", got, want)
	}

	p.mu.Lock()
	p.written, p.fail = nil, 1
	p.mu.Unlock()
	p.w.mu.Lock()
	p.w.retryBase = time.Minute // only pass3 can end the wait
	p.w.mu.Unlock()
	for range 3 {
		<-p.entered // pass1's
	}
	p.submit("pass2")
	if got := <-p.entered; got != "pass2" { // its failing write; the retry waits a minute
		t.Fatalf("wrote %s, want pass2", got)
	}
	idle := p.submit("pass3")
	waitIdle(t, idle)
	if got, want := p.writes(), []string{"pass2", "pass3"}; !slices.Equal(got, want) {
		t.Errorf("written %v, want %v (pass3 replaces the retry of pass2)", got, want)
	}
}

// passName is the name the probe gives an output: its one GatewayClass's.
func passName(out gateway.Output) string { return out.GatewayClasses[0].Name }

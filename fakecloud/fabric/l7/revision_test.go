package l7

import (
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRevisionReuse holds the engine to Rule.Revision's contract: a rule given again with
// its Name and Revision is the compilation from before (the engine does not look at it
// again), while a new Revision, a rule without one, a moved target group or a missing one
// are compiled or linked afresh.
func TestRevisionReuse(t *testing.T) {
	one, two := startEcho(t, "one", false), startEcho(t, "two", false)
	e := newEngine(t, Options{})
	fixed := func(name, rev, path, body string) Rule {
		return Rule{Name: name, Revision: rev, Path: &PathMatch{Type: MatchExact, Value: path},
			Action: Action{FixedResponse: &FixedResponse{StatusCode: 200, ContentType: "text/plain", Body: body}}}
	}
	fwd := Rule{Name: "fwd", Revision: "1", Path: &PathMatch{Type: MatchPrefix, Value: "/fwd"}, Action: forwardTo("g")}
	cfg := func(kept, plain Rule, g TargetGroup) Config {
		return Config{TargetGroups: []TargetGroup{g},
			Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{kept, plain, fwd}}}}
	}
	body := func(path string) (int, string) {
		t.Helper()
		resp, ec, raw := do(t, http.DefaultClient, get(t, base(t, e, 80, "http")+path, "", nil))
		if ec.Name != "" {
			return resp.StatusCode, ec.Name
		}
		return resp.StatusCode, strings.TrimSpace(raw)
	}
	want := func(path string, code int, text string) {
		t.Helper()
		if c, b := body(path); c != code || b != text {
			t.Errorf("%s: %d %q, want %d %q", path, c, b, code, text)
		}
	}

	apply(t, e, cfg(fixed("kept", "1", "/kept", "v1"), fixed("plain", "", "/plain", "v1"), tgroup("g", ProtocolHTTP, one.addr)))
	want("/kept", 200, "v1")
	want("/plain", 200, "v1")
	want("/fwd", 200, "one")

	// The same Revision with other content: the engine keeps what it compiled (the caller broke
	// the promise, which shows that nothing was compiled again); a rule without a Revision is
	// compiled again; the forward rule, kept, follows its group to its new target.
	apply(t, e, cfg(fixed("kept", "1", "/kept", "v2"), fixed("plain", "", "/plain", "v2"), tgroup("g", ProtocolHTTP, two.addr)))
	want("/kept", 200, "v1")
	want("/plain", 200, "v2")
	want("/fwd", 200, "two")

	// A new Revision is compiled.
	apply(t, e, cfg(fixed("kept", "2", "/kept", "v2"), fixed("plain", "", "/plain", "v2"), tgroup("g", ProtocolHTTP, two.addr)))
	want("/kept", 200, "v2")

	// A kept rule whose group is gone is compiled again, and the configuration refused as any
	// other that names a missing group; the engine serves on with the last one.
	bad := cfg(fixed("kept", "2", "/kept", "v2"), fixed("plain", "", "/plain", "v2"), tgroup("other", ProtocolHTTP, two.addr))
	if err := e.Apply(bad); err == nil || !strings.Contains(err.Error(), `no target group "g"`) {
		t.Fatalf("Apply with the kept rule's group missing: %v, want the missing group named", err)
	}
	want("/fwd", 200, "two")

	// The same name and revision on another listener is another rule.
	c := cfg(fixed("kept", "2", "/kept", "v2"), fixed("plain", "", "/plain", "v2"), tgroup("g", ProtocolHTTP, two.addr))
	c.Listeners = append(c.Listeners, Listener{Port: 81, Protocol: ProtocolHTTP, Rules: []Rule{fixed("kept", "2", "/kept", "port 81")}})
	apply(t, e, c)
	if resp, _, raw := do(t, http.DefaultClient, get(t, base(t, e, 81, "http")+"/kept", "", nil)); resp.StatusCode != 200 || strings.TrimSpace(raw) != "port 81" {
		t.Errorf("port 81 /kept: %d %q, want port 81's rule", resp.StatusCode, raw)
	}
	want("/kept", 200, "v2")
}

// TestRevisionKeepsGroupState: a target group given again as it was is the same group, so
// its round-robin position survives a change elsewhere in the configuration.
func TestRevisionKeepsGroupState(t *testing.T) {
	one, two := startEcho(t, "one", false), startEcho(t, "two", false)
	e := newEngine(t, Options{})
	g := tgroup("g", ProtocolHTTP, one.addr, two.addr)
	cfg := func(rev string) Config {
		return Config{TargetGroups: []TargetGroup{g}, Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{
			{Name: "other", Revision: rev, Path: &PathMatch{Type: MatchExact, Value: "/other"},
				Action: Action{FixedResponse: &FixedResponse{StatusCode: 204}}},
			{Name: "fwd", Revision: "1", Action: forwardTo("g")},
		}}}}
	}
	apply(t, e, cfg("0"))
	var seen []string
	for i := range 6 {
		_, ec, _ := do(t, http.DefaultClient, get(t, base(t, e, 80, "http")+"/", "", nil))
		seen = append(seen, ec.Name)
		apply(t, e, cfg(string(rune('a'+i)))) // another rule changes between requests
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] == seen[i-1] {
			t.Fatalf("round robin restarted across configurations: %v", seen)
		}
	}
}

// TestConfigEqual: rules with the same Name and Revision are equal whatever else they hold;
// without a Revision, or with another, the rules are compared.
func TestConfigEqual(t *testing.T) {
	mk := func(rev, path string, port int) Config {
		return Config{TargetGroups: []TargetGroup{tgroup("g", ProtocolHTTP, addrPort("10.0.0.1:80"))},
			Listeners: []Listener{{Port: port, Protocol: ProtocolHTTP, Rules: []Rule{
				{Name: "r", Revision: rev, Path: &PathMatch{Type: MatchExact, Value: path}, Action: forwardTo("g")}}}}}
	}
	for _, tc := range []struct {
		name string
		a, b Config
		want bool
	}{
		{"same revision, same content", mk("1", "/a", 80), mk("1", "/a", 80), true},
		{"same revision, other content", mk("1", "/a", 80), mk("1", "/b", 80), true},
		{"other revision, same content", mk("1", "/a", 80), mk("2", "/a", 80), false},
		{"no revision, same content", mk("", "/a", 80), mk("", "/a", 80), true},
		{"no revision, other content", mk("", "/a", 80), mk("", "/b", 80), false},
		{"other port", mk("1", "/a", 80), mk("1", "/a", 81), false},
		{"other targets", mk("1", "/a", 80), func() Config {
			c := mk("1", "/a", 80)
			c.TargetGroups[0].Targets[0].State = StateDraining
			return c
		}(), false},
	} {
		if got := tc.a.Equal(tc.b); got != tc.want {
			t.Errorf("%s: Equal = %t, want %t", tc.name, got, tc.want)
		}
	}
}

// TestRevisionRecheckedOnProtocolChange: a rule kept by its revision is checked again when
// its listener's protocol changes under it, or its target group's does under the same name.
func TestRevisionRecheckedOnProtocolChange(t *testing.T) {
	t.Run("listener", func(t *testing.T) {
		e := newEngine(t, Options{})
		g := tgroup("g", ProtocolHTTP, addrPort("127.0.0.1:9"))
		cfg := func(p Protocol) Config {
			return Config{TargetGroups: []TargetGroup{g}, Listeners: []Listener{{Port: 80, Protocol: p,
				Rules: []Rule{{Name: "x", Revision: "1", Action: forwardTo("g")}}}}}
		}
		apply(t, e, cfg(ProtocolHTTP))
		if err := e.Apply(cfg(ProtocolTCP)); err == nil || !strings.Contains(err.Error(), "forwards to TCP groups") {
			t.Fatalf("the HTTP listener's kept rule on a TCP listener, to an HTTP group: %v, want refused", err)
		}
	})
	t.Run("group", func(t *testing.T) {
		e := newEngine(t, Options{})
		cfg := func(p Protocol) Config {
			return Config{TargetGroups: []TargetGroup{tgroup("g", p, addrPort("127.0.0.1:9"))}, Listeners: []Listener{{Port: 80,
				Protocol: ProtocolHTTP, Rules: []Rule{{Name: "x", Revision: "1", Action: forwardTo("g")}}}}}
		}
		apply(t, e, cfg(ProtocolHTTP))
		if err := e.Apply(cfg(ProtocolTCP)); err == nil || !strings.Contains(err.Error(), "is a TCP group") {
			t.Fatalf("an HTTP listener's kept rule to a group now TCP: %v, want refused", err)
		}
	})
}

// TestRevisionConcurrentApply: Applies at once, one dropping the group another keeps, while
// requests use the kept rule and group. Run with -race: the reused objects' fields are
// written only by an Apply compiled against the config in place.
func TestRevisionConcurrentApply(t *testing.T) {
	backend := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond) // requests stay in flight on the old configuration
		_, _ = io.WriteString(w, "ok")
	})
	e := newEngine(t, Options{})
	with := Config{TargetGroups: []TargetGroup{tgroup("g", ProtocolHTTP, backend)},
		Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Name: "fwd", Revision: "1", Action: forwardTo("g")}}}}}
	without := Config{Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{
		{Name: "fixed", Action: Action{FixedResponse: &FixedResponse{StatusCode: 200}}}}}}}
	apply(t, e, with)
	u := base(t, e, 80, "http")
	var stop atomic.Bool
	var load sync.WaitGroup
	var served atomic.Int64
	for range 4 {
		load.Add(1)
		go func() {
			defer load.Done()
			c := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
			for !stop.Load() {
				if resp, err := c.Get(u); err == nil {
					_, _ = io.ReadAll(resp.Body)
					_ = resp.Body.Close()
					served.Add(1)
				}
			}
		}()
	}
	for range 3000 {
		apply(t, e, with)
		var wg sync.WaitGroup
		for _, c := range []Config{without, with} {
			wg.Add(1)
			go func() { defer wg.Done(); _ = e.Apply(c) }()
		}
		wg.Wait()
	}
	stop.Store(true)
	load.Wait()
	if served.Load() == 0 {
		t.Fatal("no request was served during the Applies")
	}
}

// TestConfigEqualKnowsEveryField: Config.Equal lists the fields it compares; a field added
// to Config, Listener or Rule must be added there too (and this count with it).
func TestConfigEqualKnowsEveryField(t *testing.T) {
	for typ, n := range map[reflect.Type]int{
		reflect.TypeFor[Config]():   2, // Listeners, TargetGroups
		reflect.TypeFor[Listener](): 6, // Port, Protocol, Certificates, HostnameScopes, ClientAuth, Rules
	} {
		if typ.NumField() != n {
			t.Errorf("%s has %d fields, Config.Equal compares %d: compare the new one there", typ, typ.NumField(), n)
		}
	}
}

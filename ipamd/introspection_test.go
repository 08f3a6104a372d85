package ipamd_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/internal/jsonstyle"
)

// TestIntrospectionAnswers asks a running daemon's introspection server for every answer and
// checks the keys it really writes: lowerCamel throughout (the /v1/pool answer was once keyed
// by Go field names), /v1/pool's counts right after one allocation, the cloud token never shown.
func TestIntrospectionAnswers(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	n := newNode(t, env, "t3.small")
	cfg := n.config(t.TempDir())
	cfg.IntrospectAddr = freePort(t)
	start(t, cfg)
	if _, err := allocate(context.Background(), cfg.SocketPath, owner(1)); err != nil {
		t.Fatal(err)
	}

	get := func(path string) any {
		t.Helper()
		resp, err := http.Get("http://" + cfg.IntrospectAddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
		}
		if strings.Contains(string(body), cfg.CloudToken) {
			t.Errorf("GET %s shows the cloud token", path)
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
		return v
	}
	for _, path := range []string{"/v1/pool", "/v1/config", "/v1/addresses", "/v1/interfaces", "/v1/fastpath", "/readyz"} {
		checkKeys(t, path, get(path))
	}

	pool, ok := get("/v1/pool").(map[string]any)
	if !ok {
		t.Fatalf("/v1/pool is not an object")
	}
	var keys []string
	for k := range pool {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"assigned", "capacity", "cooling", "free", "instanceType", "ipv4PerInterface", "maxInterfaces", "recentDemand", "waiting"}
	if !slices.Equal(keys, want) {
		t.Errorf("/v1/pool keys %q; want %q", keys, want)
	}
	// A t3.small: 3 interfaces of 4 addresses, 9 for pods; one of them is assigned.
	if pool["assigned"] != 1.0 || pool["capacity"] != 9.0 || pool["instanceType"] != "t3.small" ||
		pool["maxInterfaces"] != 3.0 || pool["ipv4PerInterface"] != 4.0 {
		t.Errorf("/v1/pool = %v; want 1 assigned of a t3.small's 9", pool)
	}
}

// dataMaps are objects whose keys are data, not field names: /v1/fastpath's counters by verdict.
var dataMaps = []string{"/v1/fastpath.packets"}

// checkKeys fails on every object key of v, at any depth, that is not lowerCamel.
func checkKeys(t *testing.T, path string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		if slices.Contains(dataMaps, path) {
			return
		}
		for k, sub := range v {
			if why := jsonstyle.LowerCamel.Problem(k); why != "" {
				t.Errorf("%s: key %q: %s", path, k, why)
			}
			checkKeys(t, path+"."+k, sub)
		}
	case []any:
		for _, sub := range v {
			checkKeys(t, path, sub)
		}
	}
}

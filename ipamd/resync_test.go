package ipamd_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// scrapeSum adds up the samples of the metric lines that start with prefix.
func scrapeSum(t testing.TB, addr, prefix string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	sum := 0.0
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, prefix) {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			sum += v
		}
	}
	return sum
}

// TestFailedUnassignResyncs: the worker forgets idle addresses before giving them back; when
// the cloud refuses the unassign it still assigns them, and ipamd adopts them back at once
// rather than at the next periodic resync (an hour away here).
func TestFailedUnassignResyncs(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	n := newNode(t, env, "t3.small")
	cfg := n.config(t.TempDir())
	cfg.Pool.WarmLow, cfg.Pool.WarmHigh, cfg.Pool.IdleRelease = 1, 1, 300*time.Millisecond
	cfg.Cooldown, cfg.ResyncInterval = 0, time.Hour
	cfg.IntrospectAddr, cfg.MetricsAddr = freePort(t), freePort(t)
	start(t, cfg)
	ctx := context.Background()
	for i := range 3 {
		if _, err := allocate(ctx, cfg.SocketPath, owner(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.Admin.SetFault(ctx, &api.SetFaultRequest{Fault: api.Fault{
		Action: api.ActionUnassignPrivateIPAddresses, ErrorRate: 1, ErrorCode: api.CodeUnauthorizedOperation,
	}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := release(ctx, cfg.SocketPath, owner(i)); err != nil {
			t.Fatal(err)
		}
	}
	failed := `flatnet_ipamd_cloud_errors_total{action="` + api.ActionUnassignPrivateIPAddresses + `"`
	deadline := time.Now().Add(15 * time.Second)
	for scrapeSum(t, cfg.MetricsAddr, failed) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the worker never tried to give idle addresses back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		cloud, known := cloudAssigned(t, n), fetchAddresses(t, cfg.IntrospectAddr)
		if sameKeys(cloud, known) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a refused unassign the cloud assigns %v that ipamd does not know", missing(cloud, known))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

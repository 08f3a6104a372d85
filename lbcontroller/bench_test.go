package lbcontroller_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/lbcontroller/model"
	corev1 "k8s.io/api/core/v1"
)

// BenchmarkEndpointsProgrammed measures, through the real API server and fakecloud, the time
// from an EndpointSlice update (the API server's answer to the write) to the cloud holding the
// new targets, seen on fakecloud's change stream, for a Service of n endpoints. In "replace-all"
// each iteration replaces every endpoint of the slice (n registrations and n deregistrations:
// the worst case); in "one" it replaces one endpoint (a rollout step: one registration, one
// deregistration). It reports p50 and p99 in ms.
func BenchmarkEndpointsProgrammed(b *testing.B) {
	h := start(b)
	for _, n := range []int{100, 1000} {
		b.Run("replace-all/"+strconv.Itoa(n), func(b *testing.B) { benchProgrammed(b, h, n, false) })
		b.Run("one/"+strconv.Itoa(n), func(b *testing.B) { benchProgrammed(b, h, n, true) })
	}
}

func benchProgrammed(b *testing.B, h *harness, n int, one bool) {
	ctx := context.Background()
	ns := h.namespace(b)
	// No deregistration delay: replaced targets leave at once, so the group stays under its
	// limit of 1000 targets.
	svc := lbService(ns, "bench", func(s *corev1.Service) {
		s.Annotations = map[string]string{model.AnnotationDeregistration: "0"}
	})
	if err := h.k8s.Create(ctx, svc); err != nil {
		b.Fatal(err)
	}
	sets := [2][]endpoint{}
	for i := range n {
		sets[0] = append(sets[0], readyEP(fmt.Sprintf("10.0.%d.%d", 16+i/250, 1+i%250)))
		if one && i < n-1 {
			sets[1] = append(sets[1], sets[0][i])
		} else {
			sets[1] = append(sets[1], readyEP(fmt.Sprintf("10.0.%d.%d", 32+i/250, 1+i%250)))
		}
	}
	sl := endpointSlice(ns, "bench", sets[0]...)
	if err := h.k8s.Create(ctx, sl); err != nil {
		b.Fatal(err)
	}
	tgID := ""
	eventually(b, "the first set is programmed", func() (bool, string) {
		_, tgs := h.owned(b, ns, "bench")
		if len(tgs) != 1 {
			return false, "no target group yet"
		}
		tgID = tgs[0].ID
		got := h.targets(b, ns, "bench")
		return len(got) == n, fmt.Sprintf("%d targets", len(got))
	})
	w := &targetWatch{h: h, tg: tgID, live: map[string]bool{}}
	w.init(b)

	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		next := sets[(i+1)%2]
		want := map[string]bool{}
		for _, e := range next {
			want[e.ip] = true
		}
		setEndpoints(sl, next...)
		if err := h.k8s.Update(ctx, sl); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		w.until(b, want)
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	if err := h.k8s.Delete(ctx, svc); err != nil && client.IgnoreNotFound(err) != nil {
		b.Fatal(err)
	}
}

// targetWatch follows one target group's live targets on fakecloud's change stream.
type targetWatch struct {
	h     *harness
	tg    string
	since uint64
	live  map[string]bool
}

func (w *targetWatch) init(tb testing.TB) {
	snap, err := w.h.cloud.Admin.GetSnapshot(context.Background(), &api.GetSnapshotRequest{})
	if err != nil {
		tb.Fatal(err)
	}
	w.since = snap.Snapshot.Seq
	for _, t := range snap.Snapshot.Targets {
		if t.TargetGroupID == w.tg && t.TargetHealth.State != api.TargetHealthDraining {
			w.live[t.Target.IP] = true
		}
	}
}

// until follows the stream until the live targets are exactly want.
func (w *targetWatch) until(tb testing.TB, want map[string]bool) {
	deadline := time.Now().Add(30 * time.Second)
	for !mapsEqual(w.live, want) {
		if time.Now().After(deadline) {
			tb.Fatalf("targets not programmed after 30s: %d live, want %d", len(w.live), len(want))
		}
		resp, err := w.h.cloud.Admin.WaitChanges(context.Background(), w.since, time.Second)
		if err != nil {
			tb.Fatal(err)
		}
		if resp.Resync {
			tb.Fatal("the change stream asks for a resync")
		}
		w.since = resp.Seq
		for _, c := range resp.Changes {
			if c.Kind != api.KindTarget {
				continue
			}
			if c.Target != nil {
				if c.Target.TargetGroupID == w.tg {
					w.live[c.Target.Target.IP] = c.Target.TargetHealth.State != api.TargetHealthDraining
					if !w.live[c.Target.Target.IP] {
						delete(w.live, c.Target.Target.IP)
					}
				}
				continue
			}
			if tg, hp, ok := cutID(c.ID); ok && tg == w.tg {
				delete(w.live, hp.Addr().String())
			}
		}
	}
}

func cutID(id string) (string, netip.AddrPort, bool) {
	for i := range len(id) {
		if id[i] == '/' {
			ap, err := netip.ParseAddrPort(id[i+1:])
			return id[:i], ap, err == nil
		}
	}
	return "", netip.AddrPort{}, false
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

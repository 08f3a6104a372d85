package l7

import (
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkProxy compares requests straight to a backend with requests through the engine (a
// rule matched by host and path prefix, forwarded to a one-target group), both over kept-alive
// HTTP/1.1 connections from 4 clients per core. It reports requests/s and p50/p99 latency.
func BenchmarkProxy(b *testing.B) {
	backend := startHandler(b, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	e := newEngine(b, Options{})
	apply(b, e, Config{
		TargetGroups: []TargetGroup{tgroup("tg", ProtocolHTTP, backend)},
		Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{
			{Name: "miss", Hosts: []string{"other.test"}, Action: Action{FixedResponse: &FixedResponse{StatusCode: 404}}},
			{Name: "api", Hosts: []string{"*.example.com"}, Path: &PathMatch{Type: MatchPrefix, Value: "/api"}, Action: forwardTo("tg")},
		}}},
	})
	for _, bc := range []struct{ name, url string }{
		{"direct", "http://" + backend.String() + "/api/x"},
		{"engine", base(b, e, 80, "http") + "/api/x"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			var mu sync.Mutex
			var lat []time.Duration
			b.SetParallelism(4) // clients per core: enough to keep the proxy busy, not just waiting
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, bc.url, nil)
					req.Host = "www.example.com"
					t0 := time.Now()
					resp, err := c.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			b.StopTimer()
			if len(lat) == 0 {
				return
			}
			slices.Sort(lat)
			b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

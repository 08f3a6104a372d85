package metadata

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

const vpc = "vpc-1"

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// world is a metadata server for instances i-0 .. i-(n-1), each owning 10.0.0.(10+i).
func world(t *testing.T, n int, lim Limits) (*Server, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := New(Config{Endpoint: "http://api", Limits: lim, Clock: clk.now})
	snap := &api.Snapshot{}
	for i := range n {
		id := "i-" + strconv.Itoa(i)
		snap.Instances = append(snap.Instances, api.Instance{InstanceID: id, Token: "token-" + id})
		snap.NetworkInterfaces = append(snap.NetworkInterfaces, api.NetworkInterface{
			NetworkInterfaceID: "eni-" + strconv.Itoa(i), VpcID: vpc, PrivateIPAddress: addrOf(i),
			Attachment: &api.Attachment{InstanceID: id, Status: api.AttachmentStatusAttached},
		})
	}
	s.Update(snap)
	return s, clk
}

func addrOf(i int) string { return "10.0.0." + strconv.Itoa(10+i) }

// put asks for a session as instance i and returns the status and the token.
func put(s *Server, i, ttl int) (int, string, http.Header) {
	r := httptest.NewRequest(http.MethodPut, "/latest/api/token", nil)
	r.RemoteAddr = addrOf(i) + ":40000"
	r.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", strconv.Itoa(ttl))
	w := httptest.NewRecorder()
	s.Handler(vpc).ServeHTTP(w, r)
	return w.Code, w.Body.String(), w.Header()
}

// token reads instance i's fakecloud token with a session token and returns the status.
func token(s *Server, i int, session string) int {
	r := httptest.NewRequest(http.MethodGet, "/latest/meta-data/fakecloud/token", nil)
	r.RemoteAddr = addrOf(i) + ":40000"
	r.Header.Set("X-aws-ec2-metadata-token", session)
	w := httptest.NewRecorder()
	s.Handler(vpc).ServeHTTP(w, r)
	return w.Code
}

// Finding 3 of the hardening issue: every PUT made a session kept up to 6 hours, so a pod
// flooding its node's metadata service held as many sessions as it sent PUTs. An instance now
// holds at most SessionsPerInstance (the oldest give way), whatever it sends.
func TestSessionsCappedPerInstance(t *testing.T) {
	lim := Limits{SessionsPerInstance: 8, Sessions: 1000, PutsPerSecond: 10, PutBurst: 10}
	s, clk := world(t, 2, lim)
	_, first, _ := put(s, 0, 21600)
	var last string
	for n := range 1000 {
		if n%10 == 0 {
			clk.add(time.Second) // stay within the rate limit: this test is about the cap
		}
		code, tok, _ := put(s, 0, 21600)
		if code != http.StatusOK {
			t.Fatalf("PUT %d: %d", n, code)
		}
		last = tok
	}
	if got := s.Sessions(); got > lim.SessionsPerInstance {
		t.Errorf("1,001 PUTs of one instance hold %d sessions; want at most %d", got, lim.SessionsPerInstance)
	}
	if code := token(s, 0, last); code != http.StatusOK {
		t.Errorf("the newest session: %d; want 200", code)
	}
	if code := token(s, 0, first); code != http.StatusUnauthorized {
		t.Errorf("the oldest session after the flood: %d; want 401 (it gave way)", code)
	}
	// Another instance's sessions are its own.
	code, other, _ := put(s, 1, 60)
	if code != http.StatusOK || token(s, 1, other) != http.StatusOK {
		t.Errorf("another instance after the flood: PUT %d", code)
	}
	if code := token(s, 1, last); code != http.StatusUnauthorized {
		t.Errorf("instance 0's session used by instance 1: %d; want 401", code)
	}
}

func TestSessionPutsRateLimited(t *testing.T) {
	lim := Limits{SessionsPerInstance: 100, Sessions: 1000, PutsPerSecond: 5, PutBurst: 5}
	s, clk := world(t, 2, lim)
	for n := range lim.PutBurst {
		if code, _, _ := put(s, 0, 60); code != http.StatusOK {
			t.Fatalf("PUT %d within the burst: %d", n, code)
		}
	}
	code, _, h := put(s, 0, 60)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Errorf("PUT past the burst: %d (Retry-After %q); want 429 with Retry-After", code, h.Get("Retry-After"))
	}
	if code, _, _ := put(s, 1, 60); code != http.StatusOK {
		t.Errorf("another instance while the first is limited: %d", code)
	}
	clk.add(time.Second)
	if code, _, _ := put(s, 0, 60); code != http.StatusOK {
		t.Errorf("a second later: %d; want 200", code)
	}
}

func TestSessionsCappedOverallAndExpire(t *testing.T) {
	lim := Limits{SessionsPerInstance: 3, Sessions: 5, PutsPerSecond: 100, PutBurst: 100}
	s, clk := world(t, 3, lim)
	var short string
	for i := range 2 {
		for range 2 {
			_, short, _ = put(s, i, 10)
		}
	}
	if code, _, _ := put(s, 2, 100); code != http.StatusOK {
		t.Fatalf("the fifth session: %d", code)
	}
	if code, _, _ := put(s, 2, 100); code != http.StatusServiceUnavailable {
		t.Errorf("a sixth session with an overall cap of 5: %d; want 503", code)
	}
	if got := s.Sessions(); got != lim.Sessions {
		t.Errorf("%d sessions; want %d", got, lim.Sessions)
	}
	if code := token(s, 1, short); code != http.StatusOK {
		t.Fatalf("a live session: %d", code)
	}
	clk.add(11 * time.Second)
	if code := token(s, 1, short); code != http.StatusUnauthorized {
		t.Errorf("a session past its TTL: %d; want 401", code)
	}
	if code, _, _ := put(s, 2, 100); code != http.StatusOK {
		t.Errorf("once the short sessions expired: %d; want 200", code)
	}
	if got := s.Sessions(); got != 2 {
		t.Errorf("%d sessions after expiry; want the 2 long ones", got)
	}
}

package metadata

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound the IMDSv2 sessions. EC2 documents no session cap (it throttles the metadata
// service per interface instead); fakecloud needs one, since a session costs it memory for up
// to six hours.
type Limits struct {
	// SessionsPerInstance is how many live sessions one instance holds (default 64); a new one
	// past it replaces the instance's oldest, so a flood from one of its pods can only cost the
	// node its older sessions, which an SDK renews with a PUT on its next 401.
	SessionsPerInstance int
	// Sessions is how many live sessions all instances hold together (default 16,384); past it
	// a PUT answers 503 until some expire.
	Sessions int
	// PutsPerSecond and PutBurst rate-limit session PUTs per instance (token bucket; defaults
	// 10 a second, bursts of 50); past them a PUT answers 429 with Retry-After.
	PutsPerSecond float64
	PutBurst      int
}

// Default limits.
const (
	DefaultSessionsPerInstance = 64
	DefaultSessions            = 16384
	DefaultPutsPerSecond       = 10
	DefaultPutBurst            = 50
)

func (l Limits) withDefaults() Limits {
	if l.SessionsPerInstance <= 0 {
		l.SessionsPerInstance = DefaultSessionsPerInstance
	}
	if l.Sessions <= 0 {
		l.Sessions = DefaultSessions
	}
	if l.PutsPerSecond <= 0 {
		l.PutsPerSecond = DefaultPutsPerSecond
	}
	if l.PutBurst <= 0 {
		l.PutBurst = DefaultPutBurst
	}
	return l
}

// sessions holds the IMDSv2 sessions of every instance. Each instance's sessions and rate
// limit sit behind their own lock, so instances (and VPCs) never wait for each other; only the
// overall count is shared, as an atomic.
type sessions struct {
	lim   Limits
	now   func() time.Time
	by    sync.Map // instance ID -> *instanceSessions
	total atomic.Int64
}

type instanceSessions struct {
	mu     sync.Mutex
	tokens map[string]session
	bucket float64 // PUTs left in the rate limit
	filled time.Time
}

type session struct {
	created, expires time.Time
}

func newSessions(lim Limits, now func() time.Time) *sessions {
	return &sessions{lim: lim, now: now}
}

func (s *sessions) of(instance string) *instanceSessions {
	if v, ok := s.by.Load(instance); ok {
		return v.(*instanceSessions)
	}
	v, _ := s.by.LoadOrStore(instance, &instanceSessions{tokens: map[string]session{}, bucket: float64(s.lim.PutBurst), filled: s.now()})
	return v.(*instanceSessions)
}

// refusal is why open turned a session request down, and how the answer says it.
type refusal struct {
	status     int
	msg        string
	retryAfter time.Duration
}

func (r *refusal) Error() string { return r.msg }

// open starts a session of instance for ttl and returns its token.
func (s *sessions) open(instance string, ttl time.Duration) (string, error) {
	now := s.now()
	if s.total.Load() >= int64(s.lim.Sessions) {
		s.sweep(now)
	}
	is := s.of(instance)
	is.mu.Lock()
	defer is.mu.Unlock()
	if wait := is.take(now, s.lim); wait > 0 {
		return "", &refusal{http.StatusTooManyRequests, "too many session requests from this instance: at most " +
			strconv.FormatFloat(s.lim.PutsPerSecond, 'f', -1, 64) + " a second; retry later", wait}
	}
	s.total.Add(-int64(is.expire(now)))
	if len(is.tokens) >= s.lim.SessionsPerInstance {
		delete(is.tokens, is.oldest()) // the new session takes its place: the total stays
	} else if s.total.Add(1) > int64(s.lim.Sessions) {
		s.total.Add(-1)
		return "", &refusal{http.StatusServiceUnavailable, "the metadata service holds as many sessions as it may; retry once some expired", time.Second}
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	is.tokens[token] = session{created: now, expires: now.Add(ttl)}
	return token, nil
}

// valid reports whether token is a live session of instance.
func (s *sessions) valid(instance, token string) bool {
	if token == "" {
		return false
	}
	v, ok := s.by.Load(instance)
	if !ok {
		return false
	}
	is := v.(*instanceSessions)
	is.mu.Lock()
	defer is.mu.Unlock()
	ss, ok := is.tokens[token]
	return ok && s.now().Before(ss.expires)
}

// sweep drops every instance's expired sessions.
func (s *sessions) sweep(now time.Time) {
	s.by.Range(func(_, v any) bool {
		is := v.(*instanceSessions)
		is.mu.Lock()
		s.total.Add(-int64(is.expire(now)))
		is.mu.Unlock()
		return true
	})
}

// take spends one PUT of the rate limit, or returns how long until one is left.
func (is *instanceSessions) take(now time.Time, lim Limits) time.Duration {
	if el := now.Sub(is.filled).Seconds(); el > 0 {
		is.bucket = math.Min(float64(lim.PutBurst), is.bucket+el*lim.PutsPerSecond)
	}
	is.filled = now
	if is.bucket < 1 {
		return time.Duration((1 - is.bucket) / lim.PutsPerSecond * float64(time.Second))
	}
	is.bucket--
	return 0
}

// expire drops the expired sessions and returns how many.
func (is *instanceSessions) expire(now time.Time) int {
	n := 0
	for t, ss := range is.tokens {
		if !now.Before(ss.expires) {
			delete(is.tokens, t)
			n++
		}
	}
	return n
}

func (is *instanceSessions) oldest() string {
	var old string
	var at time.Time
	for t, ss := range is.tokens {
		if old == "" || ss.created.Before(at) {
			old, at = t, ss.created
		}
	}
	return old
}

// refuse answers a refused session request.
func refuse(w http.ResponseWriter, err error) {
	var r *refusal
	if !errors.As(err, &r) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(r.retryAfter.Seconds()))))
	http.Error(w, r.msg, r.status)
}

package httpserve

import (
	"net/http"
	"time"
)

// Timeouts bound one HTTP server's connections.
type Timeouts struct {
	// ReadHeader bounds reading a request's headers.
	ReadHeader time.Duration
	// Read bounds reading a whole request, body included, from its first byte.
	Read time.Duration
	// Write bounds writing the answer, from the end of the request's headers.
	Write time.Duration
	// Idle bounds how long a keep-alive connection waits for its next request.
	Idle time.Duration
}

// Default is what every server of the project uses unless a test shortens it: requests are
// small (at most a few MiB of JSON) and come over loopback or one VPC.
var Default = Timeouts{ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: 30 * time.Second, Idle: 20 * time.Second}

// MaxHeaderBytes bounds a request's headers (net/http's default is 1 MiB).
const MaxHeaderBytes = 64 << 10

// New returns a server of h with the timeouts t (zero fields take Default's).
func New(h http.Handler, t Timeouts) *http.Server {
	t = t.withDefaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

func (t Timeouts) withDefaults() Timeouts {
	if t.ReadHeader <= 0 {
		t.ReadHeader = Default.ReadHeader
	}
	if t.Read <= 0 {
		t.Read = Default.Read
	}
	if t.Write <= 0 {
		t.Write = Default.Write
	}
	if t.Idle <= 0 {
		t.Idle = Default.Idle
	}
	return t
}

// ExtendWrite moves the write deadline of w's connection to d from now, for a handler that
// answers late on purpose (a long poll). It reports whether the connection allowed it.
func ExtendWrite(w http.ResponseWriter, d time.Duration) bool {
	return http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d)) == nil
}

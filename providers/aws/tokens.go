package aws

import (
	"sync"
	"time"

	"github.com/flatnet/flatnet/providers"
)

// assignMemo remembers what an Assign with a client token got, for a while, because
// AssignPrivateIpAddresses takes no client token: a repeat of the same request (the policy's
// retry after a deadline that ended once EC2 had answered, or a caller repeating its intent)
// answers the first result instead of assigning again. It cannot help when EC2's answer itself
// was lost (the addresses are assigned, the driver never learned which): ipamd's resync finds
// those as addresses it does not know and gives them back.
type assignMemo struct {
	mu   sync.Mutex
	byID map[string]memoEntry
}

type memoEntry struct {
	iface string
	got   providers.Assigned
	at    time.Time
}

// memoTTL bounds how long a token is remembered (the policy's retries of one call end well
// within it) and memoMax how many.
const (
	memoTTL = 10 * time.Minute
	memoMax = 1024
)

func (m *assignMemo) get(token, iface string) (*providers.Assigned, bool) {
	if token == "" {
		return nil, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byID[token]
	if !ok || e.iface != iface || time.Since(e.at) > memoTTL {
		return nil, false
	}
	got := e.got
	return &got, true
}

func (m *assignMemo) put(token, iface string, got *providers.Assigned) {
	if token == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byID == nil {
		m.byID = map[string]memoEntry{}
	}
	now := time.Now()
	if len(m.byID) >= memoMax {
		for k, e := range m.byID {
			if now.Sub(e.at) > memoTTL || len(m.byID) >= memoMax {
				delete(m.byID, k)
			}
		}
	}
	m.byID[token] = memoEntry{iface: iface, got: *got, at: now}
}

package lbcontroller

import (
	"crypto/rand"
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/flatnet/flatnet/providers"
)

// tokenPasses counts each owner's deploy passes for their client tokens.
//
// A deploy pass's creates carry client tokens, so that a create whose answer was lost is
// answered, not repeated, when the pass is retried. The tokens derive from the owner's intent
// (a Service's UID and generation, a Gateway's model hash), this process's seed and the count
// kept here. The count moves on after every pass that did not end with a retryable error
// (providers.Retryable): a pass cut short by throttling or a lost connection is retried with the
// same tokens, while every other pass had its creates answered (or refused). The next pass's
// creates are then new requests, even where the intent is one deployed before: a listener, target
// group or rule deleted out of band, a route removed and added again, a pass after a refusal.
// With the earlier tokens the cloud would answer them with the earlier create's result, a
// resource that may be gone, and create nothing. The seed (random per process) keeps a restarted
// controller from reusing the tokens of the one before.
type tokenPasses struct {
	seed   string
	mu     sync.Mutex
	passes map[types.NamespacedName]uint64
}

func newTokenPasses() *tokenPasses {
	return &tokenPasses{seed: rand.Text()[:8], passes: map[types.NamespacedName]uint64{}}
}

// token is the intent the owner's next pass derives its client tokens from.
func (t *tokenPasses) token(owner types.NamespacedName, intent string) string {
	t.mu.Lock()
	n := t.passes[owner]
	t.mu.Unlock()
	return intent + "/" + t.seed + "/" + strconv.FormatUint(n, 10)
}

// done records how the owner's pass ended.
func (t *tokenPasses) done(owner types.NamespacedName, err error) {
	if providers.Retryable(err) {
		return
	}
	t.mu.Lock()
	t.passes[owner]++
	t.mu.Unlock()
}

// forget drops the owner's count (it is gone, or no longer ours).
func (t *tokenPasses) forget(owner types.NamespacedName) {
	t.mu.Lock()
	delete(t.passes, owner)
	t.mu.Unlock()
}

package gateway

import (
	"hash/fnv"
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Translator translates as Translate does, and remembers each route's compilation (its rules'
// matches, filters and actions, its resolved backends, and the problems found in them) from
// one translation to the next. A route whose object is the one compiled before (same UID,
// resourceVersion and generation), while the Services and ReferenceGrants, all a compilation
// reads besides the route, are those of the translation before (by resourceVersion), takes
// that compilation instead of being compiled again: a change to one route among 1,000 compiles
// one route. Everything after the compilation (attachment, conflicts, the load balancers, the
// statuses) is done afresh each time, so the output is Translate's for the same input
// (TestTranslatorMatchesTranslate). Objects without a resourceVersion (tests' inputs) are
// always compiled. A Translator is safe for concurrent use; its translations run one at a time.
type Translator struct {
	mu     sync.Mutex
	scope  scopeKey
	routes map[string]*compiledRoute // kind/namespace/name
	hits   int                       // routes taken from memory, for the tests
}

// NewTranslator returns a Translator with nothing remembered.
func NewTranslator() *Translator { return &Translator{} }

// Translate is the package's Translate, with the Translator's memory.
func (tr *Translator) Translate(in Input) Output {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	scope, ok := compileScope(in)
	if !ok {
		tr.routes = nil
		return translate(in, nil)
	}
	m := &routeMemo{prev: tr.routes, next: make(map[string]*compiledRoute, len(tr.routes))}
	if scope != tr.scope {
		m.prev = nil // a Service or ReferenceGrant changed: every route is compiled again
	}
	out := translate(in, m)
	tr.hits += m.hits
	// Only the routes of this input are kept: a deleted route's compilation goes with it.
	tr.scope, tr.routes = scope, m.next
	return out
}

// scopeKey identifies the Services and ReferenceGrants of an input, whatever their order.
type scopeKey struct {
	n        int
	sum, xor uint64
}

// compileScope fingerprints what a route's compilation reads besides the route; ok is false
// when an object has no resourceVersion to tell its versions apart by.
func compileScope(in Input) (scopeKey, bool) {
	var k scopeKey
	add := func(kind string, m *metav1.ObjectMeta) bool {
		if m.ResourceVersion == "" {
			return false
		}
		h := fnv.New64a()
		for _, s := range []string{kind, m.Namespace, m.Name, string(m.UID), m.ResourceVersion} {
			_, _ = h.Write([]byte(s))
			_, _ = h.Write([]byte{0})
		}
		v := h.Sum64()
		k.n++
		k.sum += v
		k.xor ^= v
		return true
	}
	for i := range in.Services {
		if !add("Service", &in.Services[i].ObjectMeta) {
			return k, false
		}
	}
	for i := range in.ReferenceGrants {
		if !add("ReferenceGrant", &in.ReferenceGrants[i].ObjectMeta) {
			return k, false
		}
	}
	return k, true
}

// compiledRoute is what compiling a route left on it.
type compiledRoute struct {
	uid           types.UID
	version       string
	generation    int64
	rules         []*compiledRule
	droppedReason string
	dropped       []string
	ruleCount     int
	refsReason    string
	refsMsgs      []string
}

// routeMemo is one translation's use of a Translator's memory (nil: none).
type routeMemo struct {
	prev, next map[string]*compiledRoute
	hits       int
}

func memoKey(r *route) string { return r.kind + "/" + r.ns + "/" + r.name }

// recall gives r the compilation remembered for object m, and reports whether there was one.
func (m *routeMemo) recall(r *route, meta metav1.ObjectMeta) bool {
	if m == nil || meta.ResourceVersion == "" {
		return false
	}
	k := memoKey(r)
	c := m.prev[k]
	if c == nil || c.uid != meta.UID || c.version != meta.ResourceVersion || c.generation != meta.Generation {
		return false
	}
	// Nothing after compilation changes these; clipped, so that an append would copy.
	r.rules, r.droppedReason, r.dropped, r.ruleCount = slices.Clip(c.rules), c.droppedReason, slices.Clip(c.dropped), c.ruleCount
	r.refsReason, r.refsMsgs = c.refsReason, slices.Clip(c.refsMsgs)
	m.next[k] = c
	m.hits++
	return true
}

// keep remembers r's compilation, of object m.
func (m *routeMemo) keep(r *route, meta metav1.ObjectMeta) {
	if m == nil || meta.ResourceVersion == "" {
		return
	}
	m.next[memoKey(r)] = &compiledRoute{uid: meta.UID, version: meta.ResourceVersion, generation: meta.Generation,
		rules: slices.Clip(r.rules), droppedReason: r.droppedReason, dropped: slices.Clip(r.dropped), ruleCount: r.ruleCount,
		refsReason: r.refsReason, refsMsgs: slices.Clip(r.refsMsgs)}
}

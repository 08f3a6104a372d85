package gateway

import (
	"hash/fnv"
	"slices"
	"strconv"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Translator translates as Translate does, and remembers each route's compilation (its rules'
// matches, filters and actions, its resolved backends, and the problems found in them) from
// one translation to the next. A route whose object is the one compiled before (same UID and
// generation: its spec is the same; a status write moves only its resourceVersion), while the
// Services and ReferenceGrants, all a compilation reads besides the route, are as in the
// translation before (compileScope), takes that compilation instead of being compiled again: a
// change to one route among 1,000 compiles one route. Everything after the compilation (attachment, conflicts, the load balancers, the
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

// scopeKey identifies the Services and ReferenceGrants of an input as a route's compilation
// reads them, whatever their order.
type scopeKey struct {
	n        int
	sum, xor uint64
}

// compileScope fingerprints what a route's compilation reads besides the route: each Service's
// name, UID, type and ports (not its status or labels, which the Service controller and others
// write), each ReferenceGrant by resourceVersion. ok is false when an object has no
// resourceVersion, as objects that do not come from an API server: they are never remembered.
func compileScope(in Input) (scopeKey, bool) {
	var k scopeKey
	add := func(parts ...string) {
		h := fnv.New64a()
		for _, s := range parts {
			_, _ = h.Write([]byte(s))
			_, _ = h.Write([]byte{0})
		}
		v := h.Sum64()
		k.n++
		k.sum += v
		k.xor ^= v
	}
	for i := range in.Services {
		s := &in.Services[i]
		if s.ResourceVersion == "" {
			return k, false
		}
		parts := []string{"Service", s.Namespace, s.Name, string(s.UID), string(s.Spec.Type)}
		for _, p := range s.Spec.Ports {
			parts = append(parts, p.Name, string(p.Protocol), ptrOr(p.AppProtocol, "\x00none"), strconv.Itoa(int(p.Port)),
				p.TargetPort.String(), strconv.Itoa(int(p.NodePort)))
		}
		add(parts...)
	}
	for i := range in.ReferenceGrants {
		g := &in.ReferenceGrants[i]
		if g.ResourceVersion == "" {
			return k, false
		}
		add("ReferenceGrant", g.Namespace, g.Name, string(g.UID), g.ResourceVersion)
	}
	return k, true
}

// compiledRoute is what compiling a route left on it.
type compiledRoute struct {
	uid           types.UID
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
	if c == nil || c.uid != meta.UID || c.generation != meta.Generation {
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
	m.next[memoKey(r)] = &compiledRoute{uid: meta.UID, generation: meta.Generation,
		rules: slices.Clip(r.rules), droppedReason: r.droppedReason, dropped: slices.Clip(r.dropped), ruleCount: r.ruleCount,
		refsReason: r.refsReason, refsMsgs: slices.Clip(r.refsMsgs)}
}

package jsonstyle

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
)

// module is the module whose struct types Fields follows; other modules' types (Kubernetes',
// say) are other APIs with their own keys.
const module = "github.com/flatnet/flatnet/"

// Style is one JSON key style.
type Style struct {
	name  string
	check func(key string) string // why key is not in the style, or ""
}

func (s Style) String() string { return s.name }

var (
	pascalWords = regexp.MustCompile(`^[A-Z][a-z0-9]+([A-Z][a-z0-9]+)*$`)
	lowerCamel  = regexp.MustCompile(`^[a-z][a-z0-9]*([A-Z]+[a-z0-9]*)*$`)
)

// PascalCase is EC2's style, fakecloud's API's: every word capitalised and acronyms written as
// words (VpcId, PrivateIpAddress, Ipv4Prefixes; never VpcID).
var PascalCase = Style{name: "PascalCase", check: func(key string) string {
	if pascalWords.MatchString(key) {
		return ""
	}
	return "want PascalCase with acronyms as words (VpcId, Ipv4Prefixes)"
}}

// initialisms are the ones Go and Kubernetes write in capitals inside a name (subnetID, podIP,
// vpcCIDRs); a lowerCamel key writes them so after its first word.
var initialisms = []string{
	"API", "CIDR", "CNI", "CPU", "DNS", "ENI", "GC", "HTTP", "HTTPS", "ID", "IP", "IPAM", "JSON",
	"MAC", "MTU", "NAT", "PID", "SNAT", "TCP", "TLS", "TTL", "UDP", "UID", "URI", "URL", "VPC",
}

// LowerCamel is the style of ipamd's introspection API and wire protocol and of the node agent's
// JSON: the first word in lower case (cniConfDir, ipv4PerInterface), each further word
// capitalised, and initialisms after the first word in capitals (instanceID, not instanceId).
var LowerCamel = Style{name: "lowerCamel", check: func(key string) string {
	if !lowerCamel.MatchString(key) {
		return "want lowerCamel (first word in lower case, no separators)"
	}
	for _, in := range initialisms {
		word := in[:1] + strings.ToLower(in[1:])
		for i := 1; i < len(key); i++ {
			if !strings.HasPrefix(key[i:], word) {
				continue
			}
			rest := strings.TrimPrefix(key[i+len(word):], "s")
			if rest == "" || rest[0] >= 'A' && rest[0] <= 'Z' || rest[0] >= '0' && rest[0] <= '9' {
				return fmt.Sprintf("want lowerCamel with the initialism %s in capitals (%s)", in, key[:i]+in+key[i+len(word):])
			}
		}
	}
	if i := strings.Index(key, "Ipv"); i > 0 {
		return fmt.Sprintf("want lowerCamel with IPv4/IPv6 written so (%s)", key[:i]+"IPv"+key[i+3:])
	}
	return ""
}}

// Problem says why key is not in style s, or returns "".
func (s Style) Problem(key string) string { return s.check(key) }

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// Fields walks the given types as encoding/json encodes them: through pointers, slices, arrays
// and map values, into every struct type of this module (and anonymous struct type) it reaches,
// an embedded struct's fields counted as its parent's. It returns one line per exported field
// that has no json key or a key not in style s, naming the type and the field, and how many
// fields it checked (a test asserts that is not zero, so a walk that stopped following types
// does not pass as a clean one). Types that encode themselves (json.Marshaler,
// encoding.TextMarshaler: time.Time, netip.Addr) and struct types of other modules (another
// API's keys, Kubernetes' say) are leaves.
func (s Style) Fields(types ...reflect.Type) (problems []string, checked int) {
	w := walker{style: s, seen: map[reflect.Type]bool{}}
	for _, t := range types {
		w.walk(t, "")
	}
	return w.problems, w.checked
}

type walker struct {
	style    Style
	seen     map[reflect.Type]bool
	problems []string
	checked  int
}

// walk follows t to the struct type it encodes, if any, and checks that struct's fields once.
func (w *walker) walk(t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	if t.Name() != "" {
		if !strings.HasPrefix(t.PkgPath()+"/", module) || w.seen[t] {
			return
		}
		w.seen[t] = true
		path = t.String()
	}
	for i := range t.NumField() {
		if f := t.Field(i); f.Anonymous && f.Tag.Get("json") == "" && encodesItself(deref(f.Type)) {
			// The embedded type's MarshalJSON or MarshalText is promoted: the whole struct
			// encodes as that field alone, every other key lost.
			w.problems = append(w.problems, fmt.Sprintf("%s embeds %s, whose own encoding replaces the parent's: give the field a json key", path, f.Type))
		}
	}
	if encodesItself(t) {
		return
	}
	for i := range t.NumField() {
		w.field(t.Field(i), path)
	}
}

func (w *walker) field(f reflect.StructField, path string) {
	tag, tagged := f.Tag.Lookup("json")
	key, _, _ := strings.Cut(tag, ",")
	if tag == "-" {
		return // never encoded
	}
	if f.Anonymous && key == "" && deref(f.Type).Kind() == reflect.Struct {
		w.walk(f.Type, path) // encoding/json writes an embedded struct's fields as the parent's own
		return
	}
	if !f.IsExported() {
		return
	}
	w.checked++
	if !tagged || key == "" {
		w.problems = append(w.problems, fmt.Sprintf("%s.%s has no json key (it would be keyed %q)", path, f.Name, f.Name))
	} else if why := w.style.Problem(key); why != "" {
		w.problems = append(w.problems, fmt.Sprintf("%s.%s has the json key %q: %s", path, f.Name, key, why))
	}
	w.walk(f.Type, path+"."+f.Name)
}

func deref(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Pointer {
		return t.Elem()
	}
	return t
}

// encodesItself reports whether encoding/json leaves t's fields to t's own methods.
func encodesItself(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return t.Implements(jsonMarshaler) || pt.Implements(jsonMarshaler) ||
		t.Implements(textMarshaler) || pt.Implements(textMarshaler)
}

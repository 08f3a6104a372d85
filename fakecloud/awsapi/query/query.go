package query

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Error codes, as AWS names them.
const (
	CodeMalformed    = "MalformedQueryString"
	CodeInvalidValue = "InvalidParameterValue"
	CodeUnknown      = "UnknownParameter"
	CodeMissing      = "MissingParameter"
)

// Error is a problem with the parameters, with AWS's code for it.
type Error struct {
	Code string
	Msg  string
}

func (e *Error) Error() string { return e.Code + ": " + e.Msg }

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Limits of a request's parameters.
const (
	MaxParams    = 10000
	MaxNameBytes = 256
	// MaxIndex bounds a list's numbers (Name.N).
	MaxIndex = 10000
)

// Params are one request's parameters. A Params is used by one goroutine.
type Params struct {
	values map[string]string
	keys   []string // sorted
	used   map[string]bool
	err    *Error
}

// Parse reads the form-encoded body and the URL's query string together; a name given twice,
// in either or across both, is refused, as is a malformed encoding. Names for which skip is true
// (the signature's own query parameters) are left out.
func Parse(body, rawQuery string, skip func(name string) bool) (*Params, error) {
	p := &Params{values: map[string]string{}, used: map[string]bool{}}
	for _, src := range []struct{ where, text string }{{"body", body}, {"query string", rawQuery}} {
		if src.text == "" {
			continue
		}
		vals, err := url.ParseQuery(src.text)
		if err != nil {
			return nil, errorf(CodeMalformed, "the %s is not form-encoded name=value pairs: %v", src.where, err)
		}
		for name, vs := range vals {
			if skip != nil && skip(name) {
				continue
			}
			if name == "" {
				return nil, errorf(CodeMalformed, "the %s has a parameter without a name", src.where)
			}
			if len(name) > MaxNameBytes {
				return nil, errorf(CodeMalformed, "the parameter name %q... is longer than %d bytes", name[:32], MaxNameBytes)
			}
			if _, dup := p.values[name]; dup || len(vs) > 1 {
				return nil, errorf(CodeMalformed, "the parameter %s is given more than once: give each once", name)
			}
			p.values[name] = vs[0]
		}
	}
	if len(p.values) > MaxParams {
		return nil, errorf(CodeMalformed, "the request has %d parameters; at most %d are accepted", len(p.values), MaxParams)
	}
	p.keys = make([]string, 0, len(p.values))
	for k := range p.values {
		p.keys = append(p.keys, k)
	}
	sort.Strings(p.keys)
	return p, nil
}

// Root is the view of every parameter.
func (p *Params) Root() View { return View{p: p} }

// Err is the first problem met while reading (a value of the wrong type), or nil.
func (p *Params) Err() error {
	if p.err == nil {
		return nil
	}
	return p.err
}

// Fail records a problem found by the reader (a missing or invalid parameter); the first wins.
func (p *Params) Fail(code, format string, args ...any) {
	if p.err == nil {
		p.err = errorf(code, format, args...)
	}
}

// Unused lists, sorted, the parameters nothing has read.
func (p *Params) Unused() []string {
	var out []string
	for _, k := range p.keys {
		if !p.used[k] {
			out = append(out, k)
		}
	}
	return out
}

// Has reports whether any parameter is name or starts with name + ".".
func (v View) Has(name string) bool {
	full := v.prefix + name
	if _, ok := v.p.values[full]; ok {
		return true
	}
	return len(v.p.keysWithPrefix(full+".")) > 0
}

// View reads the parameters under a prefix: the whole request, or one structure of a list.
type View struct {
	p      *Params
	prefix string // "" or "Filter.1."
}

// Name is the full parameter name of a field of this view, for messages.
func (v View) Name(field string) string { return v.prefix + field }

// String returns a parameter's value and whether it is given.
func (v View) String(name string) (string, bool) {
	full := v.prefix + name
	val, ok := v.p.values[full]
	if ok {
		v.p.used[full] = true
	}
	return val, ok
}

// Required returns a parameter's value, recording MissingParameter when it is absent or empty.
func (v View) Required(name string) string {
	val, ok := v.String(name)
	if !ok || val == "" {
		v.p.Fail(CodeMissing, "the request must contain the parameter %s", v.prefix+name)
	}
	return val
}

// Int returns an integer parameter (32-bit, as AWS's Integer); a malformed one records
// InvalidParameterValue.
func (v View) Int(name string) (int, bool) {
	s, ok := v.String(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		v.p.Fail(CodeInvalidValue, "invalid value %q for %s: it must be an integer", clip(s), v.prefix+name)
		return 0, false
	}
	return int(n), true
}

// Bool returns a boolean parameter (true or false, any case).
func (v View) Bool(name string) (bool, bool) {
	s, ok := v.String(name)
	if !ok {
		return false, false
	}
	switch strings.ToLower(s) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	v.p.Fail(CodeInvalidValue, "invalid value %q for %s: it must be true or false", clip(s), v.prefix+name)
	return false, false
}

// List returns the values of name.1, name.2, ... in the order of their numbers.
func (v View) List(name string) []string {
	full := v.prefix + name + "."
	var items []indexed
	for _, k := range v.p.keysWithPrefix(full) {
		rest := k[len(full):]
		if strings.Contains(rest, ".") {
			continue // a structure's field: not this list's; left for Unused to report
		}
		n, ok := v.p.index(k, rest)
		if !ok {
			continue
		}
		v.p.used[k] = true
		items = append(items, indexed{n, v.p.values[k]})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].n < items[j].n })
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.s
	}
	return out
}

// Structs returns one view per structure of the list name.N.field..., in the order of N.
func (v View) Structs(name string) []View {
	full := v.prefix + name + "."
	seen := map[int]bool{}
	var idx []int
	for _, k := range v.p.keysWithPrefix(full) {
		num, _, ok := strings.Cut(k[len(full):], ".")
		if !ok {
			continue
		}
		n, ok := v.p.index(k, num)
		if !ok || seen[n] {
			continue
		}
		seen[n] = true
		idx = append(idx, n)
	}
	sort.Ints(idx)
	out := make([]View, len(idx))
	for i, n := range idx {
		out[i] = View{p: v.p, prefix: full + strconv.Itoa(n) + "."}
	}
	return out
}

// Members returns an awsquery list, name.member.1, name.member.2, ...
func (v View) Members(name string) []string { return v.List(name + ".member") }

// MemberStructs returns an awsquery list of structures, name.member.N.field...
func (v View) MemberStructs(name string) []View { return v.Structs(name + ".member") }

type indexed struct {
	n int
	s string
}

// index parses a list number of parameter k; a bad one records InvalidParameterValue.
func (p *Params) index(k, num string) (int, bool) {
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > MaxIndex || strconv.Itoa(n) != num {
		p.Fail(CodeInvalidValue, "the parameter %s has the list number %q: use 1 to %d, without leading zeros", clip(k), clip(num), MaxIndex)
		return 0, false
	}
	return n, true
}

// keysWithPrefix returns the sorted names that start with prefix.
func (p *Params) keysWithPrefix(prefix string) []string {
	i := sort.SearchStrings(p.keys, prefix)
	j := i
	for j < len(p.keys) && strings.HasPrefix(p.keys[j], prefix) {
		j++
	}
	return p.keys[i:j]
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

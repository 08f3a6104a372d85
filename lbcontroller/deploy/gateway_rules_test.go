package deploy

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/flatnet/flatnet/providers"
)

// TestSameRuleIsDeepEqual: sameRule answers as reflect.DeepEqual for random pairs of rules that
// are equal or differ in one draw (nil and empty slices and pointers among the values), and the compared types have the fields it compares (a
// new field fails here until sameRule compares it).
func TestSameRuleIsDeepEqual(t *testing.T) {
	for typ, want := range map[reflect.Type]int{
		reflect.TypeFor[providers.RuleConditions]():      5,
		reflect.TypeFor[providers.StringMatch]():         3,
		reflect.TypeFor[providers.RuleAction]():          12,
		reflect.TypeFor[providers.Retry]():               3,
		reflect.TypeFor[providers.CORS]():                6,
		reflect.TypeFor[providers.WeightedTargetGroup](): 4,
		reflect.TypeFor[providers.Redirect]():            5,
		reflect.TypeFor[providers.PathModifier]():        2,
		reflect.TypeFor[providers.FixedResponse]():       2,
		reflect.TypeFor[providers.HeaderModifier]():      3,
		reflect.TypeFor[providers.Header]():              2,
		reflect.TypeFor[providers.Rewrite]():             2,
		reflect.TypeFor[providers.Mirror]():              2,
	} {
		if typ.NumField() != want {
			t.Errorf("%s has %d fields, sameRule compares %d: compare the new ones", typ, typ.NumField(), want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	equal, differ := 0, 0
	for range 100000 {
		// b replays a's draws but for one (or none), drawn afresh.
		var draws []int
		a := randomRule(func(n int) int { v := r.IntN(n); draws = append(draws, v); return v })
		other, i := r.IntN(len(draws)+len(draws)/2), 0
		b := randomRule(func(n int) int {
			defer func() { i++ }()
			if i < len(draws) && i != other && draws[i] < n {
				return draws[i]
			}
			return r.IntN(n)
		})
		want := reflect.DeepEqual(a.Conditions, b.Conditions) && reflect.DeepEqual(a.Action, b.Action)
		if got := sameRule(providers.RuleSpec{Conditions: a.Conditions, Action: a.Action}, b); got != want {
			t.Fatalf("sameRule %v, reflect.DeepEqual %v for\n%#v\n%#v", got, want, a, b)
		}
		if want {
			equal++
		} else {
			differ++
		}
	}
	if equal < 1000 || differ < 1000 {
		t.Fatalf("the draws gave %d equal and %d different pairs: widen or narrow the domain", equal, differ)
	}
}

// randomRule draws each field from two or three values, nil and empty included.
func randomRule(pick func(n int) int) providers.Rule {
	strs := func() []string { return [][]string{nil, {}, {"a"}}[pick(3)] }
	str := func() string { return []string{"", "a"}[pick(2)] }
	match := func() providers.StringMatch { return providers.StringMatch{Name: str(), Type: "Exact", Value: str()} }
	matches := func() []providers.StringMatch {
		return [][]providers.StringMatch{nil, {}, {match()}}[pick(3)]
	}
	pathMod := func() *providers.PathModifier {
		if pick(2) == 0 {
			return nil
		}
		return &providers.PathModifier{Type: "ReplaceFullPath", Value: str()}
	}
	headers := func() *providers.HeaderModifier {
		if pick(3) != 0 {
			return nil
		}
		hs := func() []providers.Header {
			return [][]providers.Header{nil, {}, {{Name: "x", Value: str()}}}[pick(3)]
		}
		return &providers.HeaderModifier{Set: hs(), Add: hs(), Remove: strs()}
	}
	var c providers.RuleConditions
	c.Hosts, c.Method, c.Headers, c.Query = strs(), str(), matches(), matches()
	if pick(2) == 0 {
		m := match()
		c.Path = &m
	}
	var a providers.RuleAction
	switch pick(4) {
	case 0:
		a.Forward = []providers.WeightedTargetGroup{}
	case 1:
		a.Forward = []providers.WeightedTargetGroup{{TargetGroupID: str(), Weight: pick(2), RequestHeaders: headers(), ResponseHeaders: headers()}}
	}
	if pick(3) == 0 {
		a.Redirect = &providers.Redirect{Scheme: str(), Host: str(), Port: pick(2), Path: pathMod(), StatusCode: 301 + pick(2)}
	}
	if pick(3) == 0 {
		a.FixedResponse = &providers.FixedResponse{StatusCode: 200 + pick(2), Body: str()}
	}
	a.RequestHeaders, a.ResponseHeaders = headers(), headers()
	if pick(3) == 0 {
		a.Rewrite = &providers.Rewrite{Host: str(), Path: pathMod()}
	}
	a.Mirrors = [][]providers.Mirror{nil, {}, {{TargetGroupID: str(), Percent: float64(pick(2))}}}[pick(3)]
	a.RequestTimeout, a.BackendTimeout = time.Duration(pick(2))*time.Second, time.Duration(pick(2))*time.Second
	a.TLSPassthrough = pick(2) == 1
	if pick(3) == 0 {
		a.Retry = &providers.Retry{Codes: [][]int{nil, {}, {500}}[pick(3)], Attempts: 1 + pick(2), Backoff: time.Duration(pick(2)) * time.Second}
	}
	if pick(3) == 0 {
		a.CORS = &providers.CORS{AllowOrigins: strs(), AllowMethods: strs(), AllowHeaders: strs(), ExposeHeaders: strs(),
			AllowCredentials: pick(2) == 0, MaxAge: time.Duration(pick(2)) * time.Second}
	}
	return providers.Rule{Conditions: c, Action: a}
}

package state

import (
	"cmp"
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// fill sets every exported field of v (pointers allocated, slices and maps of two) to values
// from s and n, down to depth levels.
func fill(v reflect.Value, s string, n int, depth int) {
	if depth == 0 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), s, n, depth-1)
		v.Set(p)
	case reflect.Slice:
		sl := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(sl.Index(i), s, n+i, depth-1)
		}
		v.Set(sl)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, s, n, depth-1)
		fill(e, s, n, depth-1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), s, n+i, depth-1)
			}
		}
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(n))
	}
}

// overwrite changes every leaf of v in place (through its pointers, slices and maps).
func overwrite(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			overwrite(v.Elem())
		}
	case reflect.Slice:
		for i := range v.Len() {
			overwrite(v.Index(i))
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(it.Value())
			overwrite(e)
			v.SetMapIndex(it.Key(), e)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				overwrite(v.Field(i))
			}
		}
	case reflect.String:
		v.SetString("overwritten")
	case reflect.Bool:
		v.SetBool(false)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(99)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(99)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(99)
	}
}

// clonePlain copies a rule's conditions, actions and transforms as cloneJSON did (the same JSON), and the
// copy shares nothing with the original: overwriting every field of the copy leaves it as it was.
func TestClonePlainIsADeepCopy(t *testing.T) {
	var conds []api.RuleCondition
	var acts []api.Action
	var trs []api.RuleTransform
	fill(reflect.ValueOf(&conds).Elem(), "a", 1, 12)
	fill(reflect.ValueOf(&acts).Elem(), "a", 1, 12)
	fill(reflect.ValueOf(&trs).Elem(), "a", 1, 12)
	check := func(name string, orig, plain, viaJSON any, overwrite func()) {
		t.Helper()
		before, _ := json.Marshal(orig)
		got, _ := json.Marshal(plain)
		want, _ := json.Marshal(viaJSON)
		if string(got) != string(want) {
			t.Errorf("%s: clonePlain %s, cloneJSON %s", name, got, want)
		}
		overwrite()
		if after, _ := json.Marshal(orig); string(after) != string(before) {
			t.Errorf("%s: overwriting the copy changed the original:\n%s\n%s", name, before, after)
		}
	}
	c := clonePlain(conds)
	check("conditions", conds, c, cloneJSON(conds), func() { overwrite(reflect.ValueOf(&c).Elem()) })
	a := clonePlain(acts)
	check("actions", acts, a, cloneJSON(acts), func() { overwrite(reflect.ValueOf(&a).Elem()) })
	tr := clonePlain(trs)
	check("transforms", trs, tr, cloneJSON(trs), func() { overwrite(reflect.ValueOf(&tr).Elem()) })
	if clonePlain([]api.Action(nil)) != nil {
		t.Error("nil is not copied as nil")
	}
}

// TestSnapshotRuleViewsFollowChanges: a snapshot's rules are the rules as stored, after a
// modification, a move and a deletion alike, though an unchanged rule's view is reused from the
// snapshot before (ruleViews) rather than copied again.
func TestSnapshotRuleViewsFollowChanges(t *testing.T) {
	s := openT(t, Config{})
	w := newALBWorld(t, s)
	a := w.rule(t, 1, pathRule("", "/a"), forwardTo(w.tg.TargetGroupID))
	b := w.rule(t, 2, pathRule("", "/b"), forwardTo(w.tg.TargetGroupID))
	c := w.rule(t, 3, pathRule("", "/c"), forwardTo(w.tg.TargetGroupID))
	// The snapshot's rules (default rules aside) must be what DescribeRules answers.
	check := func(step string) *api.Snapshot {
		t.Helper()
		snap := s.Snapshot()
		var got []api.Rule
		for _, r := range snap.Rules {
			if !r.IsDefault {
				got = append(got, r)
			}
		}
		slices.SortFunc(got, func(x, y api.Rule) int { return cmp.Compare(x.Priority, y.Priority) })
		var want []api.Rule
		for _, r := range w.rules(t) {
			if !r.IsDefault {
				want = append(want, r)
			}
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if string(gj) != string(wj) {
			t.Fatalf("%s: snapshot rules\n%s\nDescribeRules\n%s", step, gj, wj)
		}
		return snap
	}
	byID := func(snap *api.Snapshot, id string) api.Rule {
		for _, r := range snap.Rules {
			if r.RuleID == id {
				return r
			}
		}
		t.Fatalf("rule %s not in the snapshot", id)
		return api.Rule{}
	}
	first := check("created")
	_, err := s.ModifyRule(admin(), &api.ModifyRuleRequest{RuleID: b.RuleID, Conditions: pathRule("", "/b2"), Actions: forwardTo(w.tg2.TargetGroupID)})
	mustOK(t, err)
	second := check("modified")
	// Unchanged rules share their views; the changed one does not.
	if &byID(first, a.RuleID).Conditions[0] != &byID(second, a.RuleID).Conditions[0] {
		t.Error("an unchanged rule's view was copied again")
	}
	if &byID(first, b.RuleID).Conditions[0] == &byID(second, b.RuleID).Conditions[0] {
		t.Error("a modified rule kept its old view")
	}
	_, err = s.SetRulePriorities(admin(), &api.SetRulePrioritiesRequest{RulePriorities: []api.RulePriorityPair{{RuleID: a.RuleID, Priority: 4}}})
	mustOK(t, err)
	check("moved")
	_, err = s.DeleteRule(admin(), &api.DeleteRuleRequest{RuleID: c.RuleID})
	mustOK(t, err)
	if snap := check("deleted"); slices.ContainsFunc(snap.Rules, func(r api.Rule) bool { return r.RuleID == c.RuleID }) {
		t.Error("a deleted rule is still in the snapshot")
	}
}

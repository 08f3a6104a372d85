package lbcontroller

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TestGrantsSecret: untypedSecrets reads a Secret of another namespace only when a
// ReferenceGrant there lets Gateways of the Gateway's namespace use it.
func TestGrantsSecret(t *testing.T) {
	name := gwv1.ObjectName("cert")
	grant := func(ns, fromNS, kind string, to *gwv1.ObjectName) gwv1.ReferenceGrant {
		return gwv1.ReferenceGrant{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "g"}, Spec: gwv1.ReferenceGrantSpec{
			From: []gwv1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: gwv1.Kind(kind), Namespace: gwv1.Namespace(fromNS)}},
			To:   []gwv1.ReferenceGrantTo{{Group: "", Kind: "Secret", Name: to}},
		}}
	}
	s := types.NamespacedName{Namespace: "certs", Name: "cert"}
	other := gwv1.ObjectName("other")
	for _, tc := range []struct {
		name   string
		grants []gwv1.ReferenceGrant
		want   bool
	}{
		{"none", nil, false},
		{"every Secret", []gwv1.ReferenceGrant{grant("certs", "infra", "Gateway", nil)}, true},
		{"this Secret", []gwv1.ReferenceGrant{grant("certs", "infra", "Gateway", &name)}, true},
		{"another Secret", []gwv1.ReferenceGrant{grant("certs", "infra", "Gateway", &other)}, false},
		{"another namespace's Gateways", []gwv1.ReferenceGrant{grant("certs", "apps", "Gateway", nil)}, false},
		{"HTTPRoutes only", []gwv1.ReferenceGrant{grant("certs", "infra", "HTTPRoute", nil)}, false},
		{"a grant elsewhere", []gwv1.ReferenceGrant{grant("infra", "infra", "Gateway", nil)}, false},
		{"ListenerSets only", []gwv1.ReferenceGrant{grant("certs", "infra", "ListenerSet", nil)}, false},
	} {
		if got := grantsSecret(tc.grants, "Gateway", "infra", s); got != tc.want {
			t.Errorf("%s: grantsSecret = %v, want %v", tc.name, got, tc.want)
		}
	}
	// A ListenerSet's reference needs a grant from ListenerSets: a Gateway's is not inherited.
	if grantsSecret([]gwv1.ReferenceGrant{grant("certs", "infra", "Gateway", nil)}, "ListenerSet", "infra", s) {
		t.Error("a grant to Gateways lets a ListenerSet of the namespace use the Secret")
	}
	if !grantsSecret([]gwv1.ReferenceGrant{grant("certs", "infra", "ListenerSet", nil)}, "ListenerSet", "infra", s) {
		t.Error("a grant to ListenerSets does not let a ListenerSet of the namespace use the Secret")
	}
}

package lbcontroller_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flatnet/flatnet/lbcontroller"
)

// TestGateInjector drives the readiness-gate webhook's handler with admission requests, its
// Services and routes read from a real API server: the gate is added to a pod a LoadBalancer
// Service of ours selects and to one a route's backend Service selects, and nothing else.
func TestGateInjector(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	ns := h.namespace(t)
	if err := h.k8s.Create(ctx, lbService(ns, "lb")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"backend", "unused"} {
		if err := h.k8s.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name},
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	h.httpRoute(t, ns, "r", "backend", 80)
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	inj := lbcontroller.NewGateInjector(h.k8s, s, lbcontroller.Config{})
	review := func(raw []byte) admission.Response {
		t.Helper()
		return inj.Handle(ctx, admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID: "1", Namespace: ns, Operation: admissionv1.Create,
			Kind:   metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Object: runtime.RawExtension{Raw: raw},
		}})
	}
	pod := func(app string, gated bool) []byte {
		p := corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{GenerateName: app + "-", Labels: map[string]string{"app": app}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "flatnet.io/echo:1"}}},
		}
		if gated {
			p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: lbcontroller.GateCondition}}
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name, app string
		gated     bool
		wantPatch bool
		wantMsg   string
	}{
		{"load balancer Service", "lb", false, true, "LoadBalancer Service " + ns + "/lb selects it"},
		{"route backend", "backend", false, true, "backs HTTPRoute " + ns + "/r"},
		{"plain Service", "unused", false, false, "no load balancer"},
		{"no Service", "nothing", false, false, "no load balancer"},
		{"already gated", "lb", true, false, "already has"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := review(pod(tc.app, tc.gated))
			if !resp.Allowed {
				t.Fatalf("refused: %+v", resp.Result)
			}
			msg := ""
			if resp.Result != nil {
				msg = resp.Result.Message
				if msg == "" {
					msg = string(resp.Result.Reason)
				}
			}
			if !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("message %q, want it to say %q", msg, tc.wantMsg)
			}
			if !tc.wantPatch {
				if len(resp.Patches) != 0 {
					t.Errorf("patched: %+v", resp.Patches)
				}
				return
			}
			if len(resp.Patches) != 1 || resp.Patches[0].Operation != "add" || resp.Patches[0].Path != "/spec/readinessGates" {
				t.Fatalf("patches %+v, want one add of /spec/readinessGates", resp.Patches)
			}
			b, _ := json.Marshal(resp.Patches[0].Value)
			if !strings.Contains(string(b), lbcontroller.GateCondition) {
				t.Errorf("the patch adds %s, not the gate %s", b, lbcontroller.GateCondition)
			}
		})
	}
	// Bad input: not a pod.
	if resp := review([]byte(`{"kind":"Pod","spec":{"containers":"not a list"}}`)); resp.Allowed || resp.Result == nil || resp.Result.Code != 400 {
		t.Errorf("a malformed pod: %+v", resp.Result)
	}
}

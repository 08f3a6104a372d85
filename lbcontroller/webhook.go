package lbcontroller

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// WebhookPath is where the readiness-gate webhook is served.
const WebhookPath = "/mutate-v1-pod-readiness-gate"

// InjectionLabel on a namespace asks for the readiness gate in its pods that a load balancer of
// flatnet targets (the chart's MutatingWebhookConfiguration selects these namespaces).
const InjectionLabel = "flatnet.io/readiness-gate-injection"

// gateInjector is the mutating admission webhook that adds GateCondition to the readiness gates
// of a pod being created when a load balancer of flatnet targets it: a LoadBalancer Service of
// ours selects it, or a Service that an HTTPRoute or GRPCRoute names as a backend does. Pods
// nothing targets are left alone, so they never wait for a gate nobody sets.
type gateInjector struct {
	reader  client.Reader
	cfg     Config
	decoder admission.Decoder
}

// Handle answers one admission request.
func (g *gateInjector) Handle(ctx context.Context, req admission.Request) admission.Response {
	var pod corev1.Pod
	if err := g.decoder.Decode(req, &pod); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decode the pod: %w", err))
	}
	if hasGate(&pod) {
		return admission.Allowed("the pod already has the readiness gate " + GateCondition)
	}
	ns := pod.Namespace
	if ns == "" {
		ns = req.Namespace
	}
	target, err := g.targeted(ctx, ns, pod.Labels)
	if err != nil {
		// The webhook's failure policy decides; the message says why.
		return admission.Errored(http.StatusInternalServerError, err)
	}
	if target == "" {
		return admission.Allowed("no load balancer of flatnet targets the pod")
	}
	orig, err := json.Marshal(&pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	pod.Spec.ReadinessGates = append(pod.Spec.ReadinessGates, corev1.PodReadinessGate{ConditionType: GateCondition})
	mutated, err := json.Marshal(&pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	resp := admission.PatchResponseFromRaw(orig, mutated)
	resp.Result = &metav1.Status{Code: http.StatusOK, Message: "added the readiness gate " + GateCondition + ": " + target}
	return resp
}

// SetupWebhook registers the readiness-gate webhook on mgr's webhook server (every replica
// serves it, leader or not).
func SetupWebhook(mgr manager.Manager, cfg Config) error {
	if cfg.GatewayAPI != GatewayAPIOff {
		if err := gwv1.Install(mgr.GetScheme()); err != nil {
			return fmt.Errorf("lbcontroller: register the Gateway API types: %w", err)
		}
	}
	mgr.GetWebhookServer().Register(WebhookPath, &webhook.Admission{Handler: NewGateInjector(mgr.GetClient(), mgr.GetScheme(), cfg)})
	return nil
}

// NewGateInjector is the readiness-gate webhook's handler, reading Services and routes through r.
func NewGateInjector(r client.Reader, s *runtime.Scheme, cfg Config) admission.Handler {
	return &gateInjector{reader: r, cfg: cfg, decoder: admission.NewDecoder(s)}
}

// targeted names what makes the pod a load balancer target ("" for nothing).
func (g *gateInjector) targeted(ctx context.Context, ns string, podLabels map[string]string) (string, error) {
	var svcs corev1.ServiceList
	if err := g.reader.List(ctx, &svcs, client.InNamespace(ns)); err != nil {
		return "", fmt.Errorf("list the Services of namespace %s: %w", ns, err)
	}
	selecting := map[string]bool{}
	for i := range svcs.Items {
		svc := &svcs.Items[i]
		if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(podLabels)) {
			continue
		}
		if ours(svc, g.cfg.DefaultClass) {
			return "LoadBalancer Service " + ns + "/" + svc.Name + " selects it", nil
		}
		selecting[svc.Name] = true
	}
	if len(selecting) == 0 || g.cfg.GatewayAPI == GatewayAPIOff {
		return "", nil
	}
	// A Service backing a route: HTTPRoutes and GRPCRoutes (the application load balancer's
	// routes), in any namespace (a ReferenceGrant may allow it).
	var https gwv1.HTTPRouteList
	if err := g.reader.List(ctx, &https); err != nil && !meta.IsNoMatchError(err) {
		return "", fmt.Errorf("list HTTPRoutes: %w", err)
	}
	for _, r := range https.Items {
		for _, rule := range r.Spec.Rules {
			for _, b := range rule.BackendRefs {
				if name, ok := backendService(r.Namespace, ns, b.BackendObjectReference); ok && selecting[name] {
					return fmt.Sprintf("Service %s/%s selects it and backs HTTPRoute %s/%s", ns, name, r.Namespace, r.Name), nil
				}
			}
		}
	}
	var grpcs gwv1.GRPCRouteList
	if err := g.reader.List(ctx, &grpcs); err != nil && !meta.IsNoMatchError(err) {
		return "", fmt.Errorf("list GRPCRoutes: %w", err)
	}
	for _, r := range grpcs.Items {
		for _, rule := range r.Spec.Rules {
			for _, b := range rule.BackendRefs {
				if name, ok := backendService(r.Namespace, ns, b.BackendObjectReference); ok && selecting[name] {
					return fmt.Sprintf("Service %s/%s selects it and backs GRPCRoute %s/%s", ns, name, r.Namespace, r.Name), nil
				}
			}
		}
	}
	return "", nil
}

// backendService returns the name of the core Service a route in routeNS refers to, if it is in ns.
func backendService(routeNS, ns string, ref gwv1.BackendObjectReference) (string, bool) {
	if ref.Group != nil && *ref.Group != "" {
		return "", false
	}
	if ref.Kind != nil && *ref.Kind != "Service" {
		return "", false
	}
	target := routeNS
	if ref.Namespace != nil {
		target = string(*ref.Namespace)
	}
	return string(ref.Name), target == ns
}

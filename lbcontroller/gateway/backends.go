package gateway

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// backend is a resolved backend reference: a Service port, or the reason it is not one.
type backend struct {
	weight int
	// ok: svc and port are set; otherwise requests for this share get a 500 (L7) or are
	// refused (L4).
	ok bool
	// svc is the Service by name (not a pointer into the input: a Translator's memory of a
	// compiled route would keep every earlier input's Services alive).
	svc      types.NamespacedName
	port     corev1.ServicePort
	protocol string // target group protocol: HTTP, H2C, TCP or UDP

	requestHeaders, responseHeaders *HeaderModifier
}

// resolveBackend checks one backend reference of a route and returns it resolved; each
// problem is recorded on the route (ResolvedRefs False) with the spec's reason.
func (t *translation) resolveBackend(r *route, where string, ref gwv1.BackendObjectReference, weight *int32) backend {
	b := backend{weight: 1}
	if weight != nil {
		b.weight = int(*weight)
	}
	grp := ""
	if ref.Group != nil {
		grp = string(*ref.Group)
	}
	kind := KindService
	if ref.Kind != nil {
		kind = string(*ref.Kind)
	}
	ns := r.ns
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	name := key(ns, string(ref.Name))
	if grp != "" || kind != KindService {
		r.refProblem(string(gwv1.RouteReasonInvalidKind), "%s: backendRef %s %s/%s: only core Services are supported", where, name, grp, kind)
		return b
	}
	if ns != r.ns && !t.granted(Group, r.kind, r.ns, "", KindService, ns, string(ref.Name)) {
		r.refProblem(string(gwv1.RouteReasonRefNotPermitted),
			"%s: backendRef Service %s is in another namespace and no ReferenceGrant in %s allows %ss of %s to use it", where, name, ns, r.kind, r.ns)
		return b
	}
	svc := t.services[name]
	if svc == nil {
		r.refProblem(string(gwv1.RouteReasonBackendNotFound), "%s: Service %s does not exist", where, name)
		return b
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		r.refProblem(string(gwv1.RouteReasonUnsupportedProtocol), "%s: Service %s is of type ExternalName, which has no endpoints to send to", where, name)
		return b
	}
	if ref.Port == nil {
		r.refProblem(string(gwv1.RouteReasonBackendNotFound), "%s: backendRef Service %s needs a port", where, name)
		return b
	}
	wantProto := corev1.ProtocolTCP
	if r.kind == KindUDPRoute {
		wantProto = corev1.ProtocolUDP
	}
	found := false
	for _, sp := range svc.Spec.Ports {
		proto := sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		if sp.Port == *ref.Port && proto == wantProto {
			b.port, found = sp, true
			break
		}
	}
	if !found {
		r.refProblem(string(gwv1.RouteReasonBackendNotFound), "%s: Service %s has no %s port %d", where, name, wantProto, *ref.Port)
		return b
	}
	proto, ok := backendProtocol(r.kind, ptrOr(b.port.AppProtocol, ""))
	if !ok {
		r.refProblem(string(gwv1.RouteReasonUnsupportedProtocol), "%s: Service %s port %d has appProtocol %q, which a %s cannot speak to",
			where, name, *ref.Port, *b.port.AppProtocol, r.kind)
		return b
	}
	b.ok, b.svc, b.protocol = true, types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}, proto
	return b
}

// backendProtocol is the target group protocol for a route kind and the Service port's
// appProtocol, and whether the pair is supported.
func backendProtocol(kind, appProtocol string) (string, bool) {
	switch kind {
	case KindHTTPRoute:
		switch appProtocol {
		case "", "http", "HTTP", "kubernetes.io/ws":
			return ProtocolHTTP, true
		case "kubernetes.io/h2c":
			return ProtocolH2C, true
		case "https", "HTTPS":
			// TLS to the pod, its certificate not verified (as an ELBv2 HTTPS target group)
			// unless a BackendTLSPolicy targets the port (targetGroups.add).
			return ProtocolHTTPS, true
		}
		return "", false
	case KindGRPCRoute:
		switch appProtocol {
		case "", "grpc", "kubernetes.io/h2c":
			return ProtocolH2C, true
		}
		return "", false
	case KindUDPRoute:
		return ProtocolUDP, true
	}
	return ProtocolTCP, true // TCP and TLS passthrough forward bytes, whatever the application protocol
}

func (r *route) refProblem(reason, format string, args ...any) {
	if r.refsReason == "" {
		r.refsReason = reason
	}
	r.refsMsgs = append(r.refsMsgs, fmt.Sprintf(format, args...))
}

func (r *route) dropRule(reason, format string, args ...any) {
	if r.droppedReason == "" {
		r.droppedReason = reason
	}
	r.dropped = append(r.dropped, fmt.Sprintf(format, args...))
}

package gateway

import (
	"cmp"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// listener is one Gateway listener and what its validation found.
type listener struct {
	gw *gateway
	// set is the ListenerSet the listener is an entry of; nil for the Gateway's own.
	set  *listenerSet
	spec gwv1.Listener
	// class groups protocol and TLS mode: HTTP, HTTPS, TLS (passthrough), TLS-Terminate, TCP,
	// UDP; "" for an unsupported protocol.
	class string
	kinds []gwv1.RouteGroupKind

	acceptReason, acceptMsg     string // "" when accepted
	conflictReason, conflictMsg string // "" when not conflicted
	refsReason, refsMsgs        string // "" when resolved
	certs                       []Certificate
	// clientValidation is the Gateway's spec.tls.frontend for the listener's port (HTTPS only).
	clientValidation *ClientValidation
	attached         []*attachment
}

func (l *listener) accepted() bool { return l.acceptReason == "" }

// serving: the listener goes into a load balancer (HTTPS needs a certificate for that).
func (l *listener) serving() bool {
	return l.accepted() && (!l.terminates() || len(l.certs) > 0)
}

// terminates: the listener ends TLS on the load balancer (HTTPS, and TLS in mode Terminate).
func (l *listener) terminates() bool {
	return l.class == ProtocolHTTPS || l.class == classTLSTerminate
}

func (l *listener) hostname() string {
	if l.spec.Hostname == nil {
		return ""
	}
	return string(*l.spec.Hostname)
}

func (l *listener) setRefs(reason, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if l.refsReason == "" {
		l.refsReason = reason
	}
	l.refsMsgs = strings.TrimPrefix(l.refsMsgs+"; "+msg, "; ")
	l.eventf(reason, "listener %s: %s", l.spec.Name, msg)
}

// eventf records an event about the listener on the object that declares it: its ListenerSet,
// or the Gateway.
func (l *listener) eventf(reason, format string, args ...any) {
	if l.set != nil {
		l.gw.tr.event(KindListenerSet, l.set.obj.Namespace, l.set.obj.Name, reason, format, args...)
		return
	}
	l.gw.eventf(reason, format, args...)
}

// ns is the namespace of the object that declares the listener: allowedRoutes' Same and its
// certificate references are relative to it.
func (l *listener) ns() string {
	if l.set != nil {
		return l.set.obj.Namespace
	}
	return l.gw.obj.Namespace
}

// fromKind is the kind a ReferenceGrant must name for the listener's references.
func (l *listener) fromKind() string {
	if l.set != nil {
		return KindListenerSet
	}
	return KindGateway
}

// qualified names the listener with the object that declares it, for messages that reach
// another object.
func (l *listener) qualified() string {
	if l.set != nil {
		return l.label()
	}
	return fmt.Sprintf("listener %s of Gateway %s", l.spec.Name, l.gw.key())
}

// label names the listener in messages and in the model's sources.
func (l *listener) label() string {
	if l.set != nil {
		return fmt.Sprintf("listener %s of ListenerSet %s", l.spec.Name, l.set.key())
	}
	return "listener " + string(l.spec.Name)
}

// routeKinds each listener class supports.
var routeKinds = map[string][]string{
	ProtocolHTTP:  {KindHTTPRoute, KindGRPCRoute},
	ProtocolHTTPS: {KindHTTPRoute, KindGRPCRoute},
	ProtocolTLS:   {KindTLSRoute},
	// A TLS listener in mode Terminate ends TLS and passes the decrypted stream to the
	// TLSRoute's backends (TLSRouteModeTerminate).
	classTLSTerminate: {KindTLSRoute},
	ProtocolTCP:       {KindTCPRoute},
	ProtocolUDP:       {KindUDPRoute},
}

const classTLSTerminate = "TLS-Terminate"

// listener checks what one listener alone can tell: protocol, TLS mode, route kinds.
func (t *translation) listener(g *gateway, set *listenerSet, spec gwv1.Listener) *listener {
	l := &listener{gw: g, set: set, spec: spec}
	switch spec.Protocol {
	case gwv1.HTTPProtocolType, gwv1.TCPProtocolType, gwv1.UDPProtocolType:
		l.class = string(spec.Protocol)
	case gwv1.HTTPSProtocolType:
		l.class = ProtocolHTTPS
	case gwv1.TLSProtocolType:
		l.class = classTLSTerminate // the API's default mode
		if spec.TLS != nil && spec.TLS.Mode != nil && *spec.TLS.Mode == gwv1.TLSModePassthrough {
			l.class = ProtocolTLS
		}
	default:
		l.acceptReason = string(gwv1.ListenerReasonUnsupportedProtocol)
		l.acceptMsg = fmt.Sprintf("protocol %q is not supported: use HTTP, HTTPS, TLS (passthrough), TCP or UDP", spec.Protocol)
		return l
	}
	supported := routeKinds[l.class]
	if spec.AllowedRoutes == nil || len(spec.AllowedRoutes.Kinds) == 0 {
		for _, k := range supported {
			l.kinds = append(l.kinds, groupKind(k))
		}
		return l
	}
	var bad []string
	for _, k := range spec.AllowedRoutes.Kinds {
		grp := Group
		if k.Group != nil {
			grp = string(*k.Group)
		}
		if grp != Group || !slices.Contains(supported, string(k.Kind)) {
			bad = append(bad, fmt.Sprintf("%s/%s", grp, k.Kind))
			continue
		}
		if !slices.ContainsFunc(l.kinds, func(have gwv1.RouteGroupKind) bool { return have.Kind == k.Kind }) {
			l.kinds = append(l.kinds, groupKind(string(k.Kind)))
		}
	}
	if len(bad) > 0 {
		l.refsReason = string(gwv1.ListenerReasonInvalidRouteKinds)
		l.refsMsgs = fmt.Sprintf("route kinds %s are not supported on a %s listener (supported: %s)",
			strings.Join(bad, ", "), spec.Protocol, strings.Join(supported, ", "))
		l.eventf(l.refsReason, "listener %s: %s", spec.Name, l.refsMsgs)
	}
	return l
}

func groupKind(kind string) gwv1.RouteGroupKind {
	grp := gwv1.Group(Group)
	return gwv1.RouteGroupKind{Group: &grp, Kind: gwv1.Kind(kind)}
}

// transport is the transport protocol a listener class takes on its port.
func transport(class string) string {
	if class == ProtocolUDP {
		return ProtocolUDP
	}
	return ProtocolTCP
}

// markConflicts finds listeners a connection could not be told apart by: on one port and
// transport, listeners of different classes conflict on protocol (HTTP and HTTPS, TLS
// passthrough and terminate, TCP and anything else on TCP); of one class, HTTP, HTTPS and TLS
// listeners conflict when their hostnames are equal, and TCP or UDP ones always (they have no
// hostname to tell them apart: reported as ProtocolConflict). With mixedTLS (the cloud's TLS
// listener terminates some names and passes others through: TLSRouteModeMixed), TLS listeners
// of both modes share a port, told apart by hostname as listeners of one mode are. All
// conflicting listeners are refused; none wins.
func markConflicts(ls []*listener, mixedTLS bool) {
	type portKey struct {
		port      gwv1.PortNumber
		transport string
	}
	byPort := map[portKey][]*listener{}
	for _, l := range ls {
		if l.class == "" {
			continue
		}
		k := portKey{l.spec.Port, transport(l.class)}
		byPort[k] = append(byPort[k], l)
	}
	for k, group := range byPort {
		classes := map[string]bool{}
		for _, l := range group {
			classes[portClass(l.class, mixedTLS)] = true
		}
		if len(classes) > 1 {
			var names []string
			for _, l := range group {
				names = append(names, fmt.Sprintf("%s (%s)", l.spec.Name, l.spec.Protocol))
			}
			slices.Sort(names)
			for _, l := range group {
				l.conflictReason = string(gwv1.ListenerReasonProtocolConflict)
				l.conflictMsg = fmt.Sprintf("port %d is claimed by listeners of different protocols or TLS modes: %s; give each its own port",
					k.port, strings.Join(names, ", "))
			}
			continue
		}
		byHost := map[string][]*listener{}
		for _, l := range group {
			h := l.hostname()
			if l.class == ProtocolTCP || l.class == ProtocolUDP {
				h = ""
			}
			byHost[h] = append(byHost[h], l)
		}
		for h, same := range byHost {
			if len(same) < 2 {
				continue
			}
			var names []string
			for _, l := range same {
				names = append(names, string(l.spec.Name))
			}
			slices.Sort(names)
			for _, l := range same {
				if l.class == ProtocolTCP || l.class == ProtocolUDP {
					l.conflictReason = string(gwv1.ListenerReasonProtocolConflict)
					l.conflictMsg = fmt.Sprintf("listeners %s all take %s port %d: a %s listener needs a port of its own",
						strings.Join(names, ", "), l.class, k.port, l.class)
				} else {
					l.conflictReason = string(gwv1.ListenerReasonHostnameConflict)
					what := fmt.Sprintf("hostname %q", h)
					if h == "" {
						what = "no hostname"
					}
					l.conflictMsg = fmt.Sprintf("listeners %s all have %s on port %d: give each a distinct hostname or port",
						strings.Join(names, ", "), what, k.port)
				}
			}
		}
	}
}

// portClass is the class a listener takes its port as: with mixedTLS, TLS listeners in mode
// Terminate take it as TLS ones in mode Passthrough do, so the two share one cloud listener.
func portClass(class string, mixedTLS bool) string {
	if mixedTLS && class == classTLSTerminate {
		return ProtocolTLS
	}
	return class
}

// finishListener applies conflicts and unsupported modes, and resolves certificates.
func (t *translation) finishListener(l *listener) {
	switch {
	case l.class == "":
	case l.conflictReason != "":
		l.acceptReason, l.acceptMsg = l.conflictReason, l.conflictMsg
	case l.class == classTLSTerminate && t.in.NoTLSRouteTermination:
		l.acceptReason = string(gwv1.ListenerReasonUnsupportedValue)
		l.acceptMsg = "TLS mode Terminate is not supported by this cloud's load balancers (they pass TLS through): use mode Passthrough, or an HTTPS listener"
	case l.spec.Port < 1 || l.spec.Port > 65535:
		l.acceptReason = string(gwv1.ListenerReasonPortUnavailable)
		l.acceptMsg = fmt.Sprintf("port %d is out of range: use 1 to 65535", l.spec.Port)
	}
	if !l.accepted() {
		l.kinds = nil
		l.eventf(l.acceptReason, "listener %s: %s", l.spec.Name, l.acceptMsg)
		return
	}
	if l.terminates() {
		t.certificates(l)
	}
	if l.class == ProtocolHTTPS {
		t.frontendValidation(l)
	}
}

// frontendValidation resolves the client certificate validation of an HTTPS listener's port
// (spec.tls.frontend: the port's perPort entry, else the default). Each bad CA reference makes
// ResolvedRefs False (InvalidCACertificateKind, RefNotPermitted, InvalidCACertificateRef); with
// none valid the listener is not accepted (NoValidCACertificate): it would otherwise take
// clients it was told to refuse.
func (t *translation) frontendValidation(l *listener) {
	spec := l.gw.obj.Spec.TLS
	if spec == nil || spec.Frontend == nil {
		return
	}
	cfg := spec.Frontend.Default
	for _, pp := range spec.Frontend.PerPort {
		if pp.Port == l.spec.Port {
			cfg = pp.TLS
			break
		}
	}
	v := cfg.Validation
	if v == nil {
		return
	}
	refuse := func(reason, msg string) {
		if l.set != nil {
			msg = fmt.Sprintf("the Gateway's client certificate validation for port %d (its spec.tls.frontend) cannot be served: ask the Gateway's owner", l.spec.Port)
		}
		l.acceptReason, l.acceptMsg, l.kinds = reason, msg, nil
		l.eventf(reason, "listener %s: %s", l.spec.Name, msg)
	}
	// A ListenerSet's listener is told what is wrong with the Gateway's settings, not their
	// details (the ConfigMaps and grants of the Gateway's owner).
	setRefs := func(reason, format string, args ...any) {
		if l.set != nil {
			l.setRefs(reason, "the Gateway's client certificate validation for port %d (its spec.tls.frontend) has a reference that does not resolve", l.spec.Port)
			return
		}
		l.setRefs(reason, format, args...)
	}
	if t.in.NoFrontendClientValidation {
		refuse(string(gwv1.ListenerReasonUnsupportedValue),
			"spec.tls.frontend: the cloud's load balancers do not validate client certificates (the AWS driver does not manage ELBv2 trust stores yet)")
		return
	}
	gns := l.gw.obj.Namespace
	var bundle strings.Builder
	for i, ref := range v.CACertificateRefs {
		ns := string(ptrOr(ref.Namespace, gwv1.Namespace(gns)))
		name := key(ns, string(ref.Name))
		where := fmt.Sprintf("client certificate validation caCertificateRefs[%d]", i)
		switch {
		case ref.Group != "" || ref.Kind != KindConfigMap:
			setRefs(string(gwv1.ListenerReasonInvalidCACertificateKind), "%s: %s %s: only core ConfigMaps hold CA certificates",
				where, strings.TrimPrefix(string(ref.Group)+"/"+string(ref.Kind), "/"), name)
			continue
		case ns != gns && !t.granted(Group, KindGateway, gns, "", KindConfigMap, ns, string(ref.Name)):
			setRefs(string(gwv1.ListenerReasonRefNotPermitted),
				"%s: ConfigMap %s is in another namespace and no ReferenceGrant in %s allows Gateways of %s to use it", where, name, ns, gns)
			continue
		}
		pem, err := t.caBundle(ns, string(ref.Name))
		if err != nil {
			setRefs(string(gwv1.ListenerReasonInvalidCACertificateRef), "%s: ConfigMap %s: %v", where, name, err)
			continue
		}
		bundle.WriteString(pem)
	}
	if bundle.Len() == 0 {
		refuse(string(gwv1.ListenerReasonNoValidCACertificate), "no CA certificate reference of the port's client certificate validation (spec.tls.frontend) resolves: see ResolvedRefs")
		return
	}
	if bundle.Len() > maxCABundle {
		setRefs(string(gwv1.ListenerReasonInvalidCACertificateRef), "client certificate validation: %v", errCABundleTooBig(bundle.Len()))
		refuse(string(gwv1.ListenerReasonNoValidCACertificate), "the port's client certificate validation (spec.tls.frontend) has too many CA certificates: see ResolvedRefs")
		return
	}
	l.clientValidation = &ClientValidation{Verify: v.Mode != gwv1.AllowInsecureFallback, CAPEM: bundle.String()}
}

// certificates resolves the certificateRefs of a listener that terminates TLS (HTTPS, or TLS
// in mode Terminate) into certificates; each bad reference makes ResolvedRefs False, and the
// good ones are still served.
func (t *translation) certificates(l *listener) {
	var refs []gwv1.SecretObjectReference
	if l.spec.TLS != nil {
		if l.spec.TLS.Mode != nil && *l.spec.TLS.Mode != gwv1.TLSModeTerminate {
			l.setRefs(string(gwv1.ListenerReasonInvalidCertificateRef), "TLS mode %s is not supported on HTTPS listeners: HTTPS terminates TLS", *l.spec.TLS.Mode)
			return
		}
		refs = l.spec.TLS.CertificateRefs
	}
	if len(refs) == 0 {
		what := "an HTTPS listener"
		if l.class == classTLSTerminate {
			what = "a TLS listener in mode Terminate"
		}
		l.setRefs(string(gwv1.ListenerReasonInvalidCertificateRef), "%s needs tls.certificateRefs naming a kubernetes.io/tls Secret", what)
		return
	}
	from, fromKind := l.ns(), l.fromKind()
	for _, ref := range refs {
		grp := ""
		if ref.Group != nil {
			grp = string(*ref.Group)
		}
		kind := KindSecret
		if ref.Kind != nil {
			kind = string(*ref.Kind)
		}
		ns := from
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		name := key(ns, string(ref.Name))
		if grp != "" || kind != KindSecret {
			l.setRefs(string(gwv1.ListenerReasonInvalidCertificateRef), "certificateRef %s %s: only core Secrets are supported", strings.TrimPrefix(grp+"/"+kind, "/"), name)
			continue
		}
		if ns != from && !t.granted(Group, fromKind, from, "", KindSecret, ns, string(ref.Name)) {
			l.setRefs(string(gwv1.ListenerReasonRefNotPermitted),
				"certificateRef Secret %s is in another namespace and no ReferenceGrant in %s allows %ss of %s to use it", name, ns, fromKind, from)
			continue
		}
		sec := t.secrets[name]
		if sec == nil {
			l.setRefs(string(gwv1.ListenerReasonInvalidCertificateRef), "Secret %s does not exist", name)
			continue
		}
		cert, err := parseCertificate(sec)
		if err != nil {
			l.setRefs(string(gwv1.ListenerReasonInvalidCertificateRef), "Secret %s: %v", name, err)
			continue
		}
		if h := l.hostname(); h != "" {
			cert.Hostnames = []string{h}
		} else {
			cert.Default = true
		}
		l.certs = append(l.certs, cert)
	}
}

// parseCertificate checks a kubernetes.io/tls Secret holds a matching certificate chain and key.
func parseCertificate(sec *corev1.Secret) (Certificate, error) {
	if sec.Type != corev1.SecretTypeTLS {
		return Certificate{}, fmt.Errorf("type is %q, not %s: create it with kubectl create secret tls", sec.Type, corev1.SecretTypeTLS)
	}
	crt, key := sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey]
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return Certificate{}, fmt.Errorf("tls.crt and tls.key are not a PEM certificate and its private key: %w", err)
	}
	sum := sha256.Sum256(pair.Certificate[0])
	return Certificate{
		Secret:      key2(sec),
		Fingerprint: hex.EncodeToString(sum[:]),
		CertPEM:     crt,
		KeyPEM:      key,
	}, nil
}

func key2(o metav1.Object) string { return key(o.GetNamespace(), o.GetName()) }

// granted: a ReferenceGrant in toNS lets fromKind objects of fromNS refer to toKind toName.
func (t *translation) granted(fromGroup, fromKind, fromNS, toGroup, toKind, toNS, toName string) bool {
	return slices.ContainsFunc(t.grants[toNS], func(g *gwv1.ReferenceGrant) bool {
		return GrantAllows(g, fromGroup, fromKind, fromNS, toGroup, toKind, toName)
	})
}

// GrantAllows reports whether ReferenceGrant g lets fromKind objects of fromNS refer to toKind
// toName in g's namespace.
func GrantAllows(g *gwv1.ReferenceGrant, fromGroup, fromKind, fromNS, toGroup, toKind, toName string) bool {
	from := slices.ContainsFunc(g.Spec.From, func(f gwv1.ReferenceGrantFrom) bool {
		return string(f.Group) == fromGroup && string(f.Kind) == fromKind && string(f.Namespace) == fromNS
	})
	to := slices.ContainsFunc(g.Spec.To, func(to gwv1.ReferenceGrantTo) bool {
		return string(to.Group) == toGroup && string(to.Kind) == toKind && (to.Name == nil || string(*to.Name) == toName)
	})
	return from && to
}

// gatewayStatus is the Gateway's status from its listeners, attachments and the cloud's state.
func (t *translation) gatewayStatus(g *gateway) GatewayStatus {
	gen := g.obj.Generation
	lb := t.lbs[g.key()]
	programmed := lb != nil && lb.Programmed
	var st gwv1.GatewayStatus
	if lb != nil {
		for _, a := range lb.Addresses {
			typ := gwv1.IPAddressType
			st.Addresses = append(st.Addresses, gwv1.GatewayStatusAddress{Type: &typ, Value: a})
		}
	}
	// The Gateway is taken as having the listeners of the ListenerSets it takes beside its own
	// (the spec's merged list): one of theirs that can serve makes it accepted and programmed.
	// Only its own are named in its conditions, which the ListenerSets' authors may not read.
	valid, serving := 0, 0
	var bad []string // refused, or accepted but unable to serve (an HTTPS listener without a certificate)
	for _, l := range g.allListeners() {
		if l.accepted() {
			valid++
		}
		if l.serving() {
			serving++
		} else if l.set == nil {
			bad = append(bad, string(l.spec.Name))
		}
	}
	var accepted metav1.Condition
	switch {
	case g.acceptReason != "":
		accepted = condition(string(gwv1.GatewayConditionAccepted), false, g.acceptReason, g.acceptMsg, gen)
	case valid == 0:
		accepted = condition(string(gwv1.GatewayConditionAccepted), false, string(gwv1.GatewayReasonListenersNotValid),
			"no listener is valid: see the listeners' conditions", gen)
	case serving == 0:
		accepted = condition(string(gwv1.GatewayConditionAccepted), true, string(gwv1.GatewayReasonListenersNotValid),
			fmt.Sprintf("no listener can serve: listeners %s are not valid (see their conditions)", cmp.Or(strings.Join(bad, ", "), "of its ListenerSets")), gen)
	case len(bad) > 0:
		accepted = condition(string(gwv1.GatewayConditionAccepted), true, string(gwv1.GatewayReasonListenersNotValid),
			fmt.Sprintf("listeners %s are not valid and are left out (see their conditions); the others are served", strings.Join(bad, ", ")), gen)
	default:
		accepted = condition(string(gwv1.GatewayConditionAccepted), true, string(gwv1.GatewayReasonAccepted), "accepted", gen)
	}
	g.accepted = accepted.Status == metav1.ConditionTrue
	var prog metav1.Condition
	switch {
	case accepted.Status == metav1.ConditionFalse || serving == 0:
		prog = condition(string(gwv1.GatewayConditionProgrammed), false, string(gwv1.GatewayReasonInvalid),
			"nothing to program: the Gateway has no listener that can serve", gen)
	case g.addressReason != "":
		prog = condition(string(gwv1.GatewayConditionProgrammed), false, g.addressReason, g.addressMsg, gen)
	case lb != nil && lb.AddressNotUsable:
		prog = condition(string(gwv1.GatewayConditionProgrammed), false, string(gwv1.GatewayReasonAddressNotUsable),
			cmp.Or(lb.Message, "the cloud cannot give the load balancer the address asked for"), gen)
	case programmed:
		prog = condition(string(gwv1.GatewayConditionProgrammed), true, string(gwv1.GatewayReasonProgrammed),
			"the cloud's load balancers are programmed", gen)
	case lb == nil || len(lb.Addresses) == 0:
		prog = condition(string(gwv1.GatewayConditionProgrammed), false, string(gwv1.GatewayReasonAddressNotAssigned),
			cmp.Or(lbMessage(lb), "waiting for the cloud to give the load balancer an address"), gen)
	default:
		prog = condition(string(gwv1.GatewayConditionProgrammed), false, string(gwv1.GatewayReasonPending),
			cmp.Or(lbMessage(lb), "waiting for the cloud to program the load balancer"), gen)
	}
	st.Conditions = []metav1.Condition{accepted, prog}
	if n := g.decideListenerSets(g.accepted, prog.Status == metav1.ConditionTrue); n > 0 || g.obj.Spec.AllowedListeners != nil || len(g.sets) > 0 {
		st.AttachedListenerSets = &n
	}
	if slices.ContainsFunc(g.allListeners(), func(l *listener) bool { return l.clientValidation != nil && !l.clientValidation.Verify }) {
		st.Conditions = append(st.Conditions, condition(string(gwv1.GatewayConditionInsecureFrontendValidationMode), true,
			string(gwv1.GatewayReasonConfigurationChanged),
			"spec.tls.frontend allows clients without a valid certificate (AllowInsecureFallback) on some HTTPS listener", gen))
	}
	if refs, ok := g.resolvedRefs(); ok {
		st.Conditions = append(st.Conditions, refs)
	}
	for _, l := range g.listeners {
		st.Listeners = append(st.Listeners, l.status(gen, accepted.Status == metav1.ConditionTrue, programmed, "waiting for the cloud to program the load balancer"))
	}
	return GatewayStatus{Namespace: g.obj.Namespace, Name: g.obj.Name, Status: st}
}

func lbMessage(lb *LoadBalancerState) string {
	if lb == nil {
		return ""
	}
	return lb.Message
}

// status is the listener's status; pendingMsg says why it is not programmed yet when its load
// balancer is not.
func (l *listener) status(gen int64, gwAccepted, lbProgrammed bool, pendingMsg string) gwv1.ListenerStatus {
	st := gwv1.ListenerStatus{Name: l.spec.Name, SupportedKinds: l.kinds, AttachedRoutes: int32(len(l.attached))}
	if st.SupportedKinds == nil {
		st.SupportedKinds = []gwv1.RouteGroupKind{}
	}
	if l.accepted() {
		st.Conditions = append(st.Conditions, condition(string(gwv1.ListenerConditionAccepted), true, string(gwv1.ListenerReasonAccepted), "accepted", gen))
	} else {
		st.Conditions = append(st.Conditions, condition(string(gwv1.ListenerConditionAccepted), false, l.acceptReason, l.acceptMsg, gen))
	}
	switch {
	case !gwAccepted:
		st.Conditions = append(st.Conditions, condition(string(gwv1.ListenerConditionProgrammed), false, string(gwv1.ListenerReasonInvalid),
			"the Gateway is not accepted: see its Accepted condition", gen))
	case !l.serving():
		msg := l.acceptMsg
		if l.accepted() {
			msg = "no valid certificate: " + l.refsMsgs
		}
		st.Conditions = append(st.Conditions, condition(string(gwv1.ListenerConditionProgrammed), false, string(gwv1.ListenerReasonInvalid), msg, gen))
	case lbProgrammed:
		st.Conditions = append(st.Conditions, condition(string(gwv1.ListenerConditionProgrammed), true, string(gwv1.ListenerReasonProgrammed), "programmed", gen))
	default:
		st.Conditions = append(st.Conditions, condition(string(gwv1.ListenerConditionProgrammed), false, string(gwv1.ListenerReasonPending), pendingMsg, gen))
	}
	if l.refsReason == "" {
		st.Conditions = append(st.Conditions, condition(string(gwv1.ListenerConditionResolvedRefs), true, string(gwv1.ListenerReasonResolvedRefs), "resolved", gen))
	} else {
		st.Conditions = append(st.Conditions, condition(string(gwv1.ListenerConditionResolvedRefs), false, l.refsReason, l.refsMsgs, gen))
	}
	if l.conflictReason == "" {
		st.Conditions = append(st.Conditions, condition(string(gwv1.ListenerConditionConflicted), false, string(gwv1.ListenerReasonNoConflicts), "no conflicts", gen))
	} else {
		st.Conditions = append(st.Conditions, condition(string(gwv1.ListenerConditionConflicted), true, l.conflictReason, l.conflictMsg, gen))
	}
	return st
}

// backendClientCertificate resolves the Gateway's spec.tls.backend.clientCertificateRef: a
// kubernetes.io/tls Secret, in another namespace only with a ReferenceGrant.
func (t *translation) backendClientCertificate(g *gateway) {
	spec := g.obj.Spec.TLS
	if spec == nil || spec.Backend == nil || spec.Backend.ClientCertificateRef == nil {
		return
	}
	ref := spec.Backend.ClientCertificateRef
	grp, kind := string(ptrOr(ref.Group, "")), string(ptrOr(ref.Kind, KindSecret))
	ns := string(ptrOr(ref.Namespace, gwv1.Namespace(g.obj.Namespace)))
	name := key(ns, string(ref.Name))
	fail := func(reason, format string, args ...any) {
		g.clientRefReason, g.clientRefMsg = reason, "spec.tls.backend.clientCertificateRef: "+fmt.Sprintf(format, args...)
		g.eventf(reason, "%s", g.clientRefMsg)
	}
	switch {
	case grp != "" || kind != KindSecret:
		fail(string(gwv1.GatewayReasonInvalidClientCertificateRef), "%s %s: only core Secrets are supported", strings.TrimPrefix(grp+"/"+kind, "/"), name)
		return
	case ns != g.obj.Namespace && !t.granted(Group, KindGateway, g.obj.Namespace, "", KindSecret, ns, string(ref.Name)):
		fail(string(gwv1.GatewayReasonRefNotPermitted),
			"Secret %s is in another namespace and no ReferenceGrant in %s allows Gateways of %s to use it", name, ns, g.obj.Namespace)
		return
	}
	sec := t.secrets[name]
	if sec == nil {
		fail(string(gwv1.GatewayReasonInvalidClientCertificateRef), "Secret %s does not exist", name)
		return
	}
	cert, err := parseCertificate(sec)
	if err != nil {
		fail(string(gwv1.GatewayReasonInvalidClientCertificateRef), "Secret %s: %v", name, err)
		return
	}
	if t.in.NoBackendClientCertificates {
		fail(reasonUnsupportedValue, "the cloud's load balancers present no client certificate to their targets (the AWS driver: ELBv2 does not)")
		return
	}
	g.clientCert = &cert
}

// reasonUnsupportedValue is the ResolvedRefs reason of a client certificate the cloud cannot
// present (the spec lists none for it; it allows others).
const reasonUnsupportedValue = "UnsupportedValue"

// resolvedRefs is the Gateway's ResolvedRefs condition, which it has only when it names a
// backend client certificate (the condition is experimental in v1.6): False with the reference's
// problem, or ListenersNotResolved when a listener's references do not resolve.
func (g *gateway) resolvedRefs() (metav1.Condition, bool) {
	spec := g.obj.Spec.TLS
	if spec == nil || spec.Backend == nil || spec.Backend.ClientCertificateRef == nil {
		return metav1.Condition{}, false
	}
	typ, gen := string(gwv1.GatewayConditionResolvedRefs), g.obj.Generation
	if g.clientRefReason != "" {
		return condition(typ, false, g.clientRefReason, g.clientRefMsg, gen), true
	}
	var bad []string
	for _, l := range g.listeners {
		if l.refsReason != "" {
			bad = append(bad, string(l.spec.Name))
		}
	}
	if len(bad) > 0 {
		return condition(typ, false, string(gwv1.GatewayReasonListenersNotResolved),
			fmt.Sprintf("the references of listeners %s do not resolve (see their conditions)", strings.Join(bad, ", ")), gen), true
	}
	return condition(typ, true, string(gwv1.GatewayReasonResolvedRefs), "the backend client certificate and the listeners' references resolve", gen), true
}

package state

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// listenerSpec is what CreateListener and ModifyListener set on an application listener.
type listenerSpec struct {
	Protocol       string
	Port           int
	DefaultActions []api.Action
	SSLPolicy      string
	// CertificateIDs are the default first, then the others.
	CertificateIDs       []string
	HostnameScopes       []string
	MutualAuthentication *api.MutualAuthentication
}

// albListenerKey is the unique port key of an application listener: ports are per transport,
// so a port holds one stream listener (HTTP, HTTPS, TLS or TCP: these cannot share it) and one
// UDP listener (DNS's 53/TCP and 53/UDP, say).
func albListenerKey(lbID, protocol string, port int) string {
	transport := api.ProtocolHTTP // what the stream listeners' keys have always held
	if protocol == api.ProtocolUDP {
		transport = api.ProtocolUDP
	}
	return fmt.Sprintf("%s/%s/%d", lbID, transport, port)
}

// buildALBListener validates spec against the load balancer and the store and fills in r
// (a copy the caller owns).
func (s *Store) buildALBListener(t *tx, lb *lbRec, r *listenerRec, spec listenerSpec) error {
	switch spec.Protocol {
	case api.ProtocolHTTP, api.ProtocolHTTPS, api.ProtocolTLS, api.ProtocolTCP, api.ProtocolUDP:
	case "":
		return invalid("Protocol is required: HTTP, HTTPS, TLS (passthrough), TCP or UDP")
	default:
		return invalid("Protocol %.20q is not supported for application load balancer listeners: use HTTP, HTTPS, TLS (passthrough), TCP or UDP", spec.Protocol)
	}
	if err := validatePort("Port", spec.Port); err != nil {
		return err
	}
	lim := s.cfg.ALBLimits
	var acts []api.Action
	var tgs []string
	var err error
	if isL4Protocol(spec.Protocol) {
		acts, tgs, err = validateL4Actions("DefaultActions", spec.Protocol, spec.DefaultActions, true, lim)
	} else {
		acts, tgs, err = validateActions("DefaultActions", spec.DefaultActions, ruleShape{isDefault: true}, lim)
	}
	if err != nil {
		return err
	}
	// A TLS listener with certificates terminates TLS (as ELBv2's network load balancers'
	// TLS listeners do) and forwards the decrypted stream; without, it passes TLS through.
	terminating := spec.Protocol == api.ProtocolTLS && len(spec.CertificateIDs) > 0
	if err := checkALBTargets(t, lb, spec.Protocol, tlsGroupRefusal(spec.Protocol, terminating, acts, true), tgs); err != nil {
		return err
	}
	if r.ID != "" && isL4Protocol(r.Protocol) != isL4Protocol(spec.Protocol) || r.Protocol == api.ProtocolTLS && spec.Protocol != api.ProtocolTLS {
		if n := count(t.Txn, tableRules, indexListener, r.ID); n > 0 {
			return api.Errorf(api.CodeInvalidConfigurationRequest, "listener %s is %s and has %d rules, which a %s listener cannot hold; delete them first", r.ID, r.Protocol, n, spec.Protocol)
		}
	}
	if r.ID != "" {
		next := &listenerRec{ID: r.ID, Protocol: spec.Protocol, CertificateIDs: spec.CertificateIDs}
		if err := checkRulesKeepTLSGroups(t, r, next); err != nil {
			return err
		}
	}
	r.Protocol, r.Port, r.PortKey = spec.Protocol, spec.Port, albListenerKey(lb.ID, spec.Protocol, spec.Port)
	r.Actions, r.TargetGroupIDs, r.TargetGroupID = acts, tgs, ""
	r.SSLPolicy, r.CertificateIDs, r.HostnameScopes, r.MutualAuthentication = "", nil, nil, nil
	if spec.Protocol != api.ProtocolHTTPS && len(spec.HostnameScopes) > 0 {
		return invalid("HostnameScopes apply to HTTPS listeners only (a request's Host is compared with its connection's SNI name); Protocol is %s", spec.Protocol)
	}
	mtls, err := validateMutualAuthentication(spec.Protocol, spec.MutualAuthentication)
	if err != nil {
		return err
	}
	if spec.Protocol != api.ProtocolHTTPS && !terminating {
		if spec.SSLPolicy != "" || len(spec.CertificateIDs) > 0 {
			if spec.Protocol == api.ProtocolTLS {
				return invalid("SslPolicy applies to listeners that terminate TLS: give a TLS listener Certificates to terminate TLS, or none to pass it through")
			}
			return invalid("SslPolicy and Certificates apply to HTTPS and TLS listeners only; Protocol is %s", spec.Protocol)
		}
		return nil
	}
	r.SSLPolicy = spec.SSLPolicy
	if r.SSLPolicy == "" {
		r.SSLPolicy = api.SSLPolicyDefault
	}
	if _, ok := api.SSLPolicyMinTLS[r.SSLPolicy]; !ok {
		return api.Errorf(api.CodeSSLPolicyNotFound, "SslPolicy %.60q is not a policy fakecloud knows: use %s (the default), %s, %s, %s or %s",
			spec.SSLPolicy, api.SSLPolicyDefault, api.SSLPolicyTLS13Only, api.SSLPolicyTLS12, api.SSLPolicyForwardSecrecy, api.SSLPolicyLegacy)
	}
	if len(spec.CertificateIDs) == 0 {
		return invalid("Certificates is required for an HTTPS listener: give the default certificate (import one with ImportCertificate)")
	}
	if err := checkListenerCertificates(t, spec.CertificateIDs, lim); err != nil {
		return err
	}
	r.CertificateIDs = slices.Clone(spec.CertificateIDs)
	scopes, err := checkHostnameScopes(spec.HostnameScopes)
	if err != nil {
		return err
	}
	r.HostnameScopes, r.MutualAuthentication = scopes, mtls
	return nil
}

// maxHostnameScopes bounds a listener's HostnameScopes (Gateway API allows 64 listeners a
// Gateway).
const maxHostnameScopes = 100

// checkHostnameScopes validates an HTTPS listener's hostname scopes and answers them in
// lowercase (nil for none).
func checkHostnameScopes(scopes []string) ([]string, error) {
	if len(scopes) > maxHostnameScopes {
		return nil, invalid("HostnameScopes holds %d names; a listener takes at most %d", len(scopes), maxHostnameScopes)
	}
	var out []string
	for i, h := range scopes {
		f := fmt.Sprintf("HostnameScopes[%d]", i)
		if err := validateHostName(f, h, true); err != nil {
			return nil, err
		}
		h = strings.ToLower(h)
		if j := slices.Index(out, h); j >= 0 {
			return nil, invalid("%s %.60q is HostnameScopes[%d] again; list each scope once", f, h, j)
		}
		out = append(out, h)
	}
	return out, nil
}

// checkListenerCertificates checks that every certificate exists, none is listed twice, and
// the listener holds no more than the limit besides its default one.
func checkListenerCertificates(t *tx, ids []string, lim ALBLimits) error {
	if extra := len(ids) - 1; extra > lim.CertificatesPerListener {
		return api.Errorf(api.CodeTooManyCertificates, "a listener holds at most %d certificates besides its default one; %d given", lim.CertificatesPerListener, extra)
	}
	for i, id := range ids {
		if slices.Index(ids, id) != i {
			return invalid("Certificates lists %s twice", id)
		}
		if _, err := getCert(t.Txn, id); err != nil {
			return err
		}
	}
	return nil
}

// checkALBTargets applies ELBv2's rules to an application load balancer's listener of the
// protocol forwarding or mirroring to target groups: each exists, is in the load balancer's
// VPC, is an HTTP or HTTPS group (a TCP group behind TLS and TCP listeners, a UDP group
// behind UDP ones), and serves no other load balancer. A TLS group is refused with
// tlsRefusal, why this action cannot forward to one (tlsGroupRefusal; "": it can).
func checkALBTargets(t *tx, lb *lbRec, protocol, tlsRefusal string, tgIDs []string) error {
	for _, id := range tgIDs {
		tg, err := getTG(t.Txn, id)
		if err != nil {
			return err
		}
		if tg.VpcID != lb.VpcID {
			return api.Errorf(api.CodeInvalidConfigurationRequest, "target group %s is in %s but load balancer %s is in %s", tg.ID, tg.VpcID, lb.ID, lb.VpcID)
		}
		switch want := l4GroupProtocol(protocol); {
		case tg.Protocol == api.ProtocolTLS:
			if tlsRefusal != "" {
				return tlsGroupError(tg.ID, tlsRefusal)
			}
		case want != "" && tg.Protocol != want || want == "" && tgLBType(tg.Protocol) != api.LoadBalancerTypeApplication:
			return api.Errorf(api.CodeIncompatibleProtocols, "application load balancer %s cannot forward to %s target group %s from a %s listener: %s", lb.ID, tg.Protocol, tg.ID, protocol, listenerClass(protocol))
		}
		for _, other := range tgLoadBalancers(t.Txn, tg.ID) {
			if other != lb.ID {
				return api.Errorf(api.CodeTargetGroupAssociationLimit, "target group %s already serves load balancer %s; a target group serves one load balancer", tg.ID, other)
			}
		}
	}
	return nil
}

// createALBListener is CreateListener on an application load balancer.
func (s *Store) createALBListener(t *tx, c Call, lb *lbRec, req *api.CreateListenerRequest) (*api.CreateListenerResponse, error) {
	if len(req.Certificates) > 1 {
		return nil, invalid("Certificates holds %d certificates; CreateListener takes the default one only (add others with AddListenerCertificates)", len(req.Certificates))
	}
	var certs []string
	for _, lc := range req.Certificates {
		certs = append(certs, lc.CertificateID)
	}
	r := &listenerRec{LoadBalancerID: lb.ID, Created: c.Now}
	spec := listenerSpec{Protocol: req.Protocol, Port: req.Port, DefaultActions: req.DefaultActions, SSLPolicy: req.SSLPolicy, CertificateIDs: certs,
		HostnameScopes: req.HostnameScopes, MutualAuthentication: req.MutualAuthentication}
	if err := s.buildALBListener(t, lb, r, spec); err != nil {
		return nil, err
	}
	v := newViewer(t.Txn, c)
	if old := first[listenerRec](t.Txn, tableListeners, indexListenerPort, r.PortKey); old != nil {
		if old.Protocol == r.Protocol && old.SSLPolicy == r.SSLPolicy && reflect.DeepEqual(old.Actions, r.Actions) &&
			defaultCertificate(old) == defaultCertificate(r) && slices.Equal(old.HostnameScopes, r.HostnameScopes) &&
			sameMutualAuthentication(old.MutualAuthentication, r.MutualAuthentication) {
			return &api.CreateListenerResponse{Listener: v.listener(old)}, nil
		}
		return nil, api.Errorf(api.CodeDuplicateListener, "load balancer %s already has %s listener %s on port %d with other settings; modify it, delete it or pick another port",
			lb.ID, old.Protocol, old.ID, req.Port)
	}
	if n := count(t.Txn, tableListeners, indexLoadBalancer, lb.ID); n >= maxListenersPerLB {
		return nil, api.Errorf(api.CodeTooManyListeners, "load balancer %s has %d listeners, the most it may hold", lb.ID, n)
	}
	r.ID = newID(t.Txn, tableListeners, "listener")
	if err := t.putListener(nil, r); err != nil {
		return nil, err
	}
	return &api.CreateListenerResponse{Listener: v.listener(r)}, nil
}

// defaultCertificate is an HTTPS listener's default certificate ("" for others).
func defaultCertificate(l *listenerRec) string {
	if len(l.CertificateIDs) == 0 {
		return ""
	}
	return l.CertificateIDs[0]
}

// putListener stores a new or changed listener and marks what changes with it: the target
// groups and certificates it used before or uses now.
func (t *tx) putListener(old, r *listenerRec) error {
	if err := t.put(tableListeners, api.KindListener, r.ID, r); err != nil {
		return err
	}
	var tgs, certs []string
	if old != nil {
		tgs, certs = listenerTargetGroups(old), old.CertificateIDs
	}
	for _, id := range append(slices.Clone(tgs), listenerTargetGroups(r)...) {
		t.touchGroup(id)
	}
	for _, id := range append(slices.Clone(certs), r.CertificateIDs...) {
		t.touch(api.KindCertificate, id)
	}
	return nil
}

// ModifyListener changes a listener's port, protocol, default actions, SSL policy or default
// certificate; what the request leaves empty keeps its value.
func (s *Store) ModifyListener(c Call, req *api.ModifyListenerRequest) (*api.ModifyListenerResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionModifyListener); err != nil {
		return nil, err
	}
	if req.Port != 0 {
		if err := validatePort("Port", req.Port); err != nil {
			return nil, err
		}
	}
	if len(req.Certificates) > 1 {
		return nil, invalid("Certificates holds %d certificates; ModifyListener sets the default one only (use AddListenerCertificates for the others)", len(req.Certificates))
	}
	return write(s, c, api.ActionModifyListener, "", req, func(t *tx) (*api.ModifyListenerResponse, error) {
		old, err := getListener(t.Txn, req.ListenerID)
		if err != nil {
			return nil, err
		}
		lb, err := getLB(t.Txn, old.LoadBalancerID)
		if err != nil {
			return nil, err
		}
		n := *old
		if lb.Type == api.LoadBalancerTypeApplication {
			err = s.modifyALBListener(t, lb, &n, req)
		} else {
			err = modifyNLBListener(t, lb, &n, req)
		}
		if err != nil {
			return nil, err
		}
		if n.PortKey != old.PortKey {
			if other := first[listenerRec](t.Txn, tableListeners, indexListenerPort, n.PortKey); other != nil {
				return nil, api.Errorf(api.CodeDuplicateListener, "load balancer %s already has listener %s on port %d", lb.ID, other.ID, n.Port)
			}
		}
		if !reflect.DeepEqual(&n, old) {
			if err := t.putListener(old, &n); err != nil {
				return nil, err
			}
		}
		return &api.ModifyListenerResponse{Listener: newViewer(t.Txn, c).listener(&n)}, nil
	})
}

func (s *Store) modifyALBListener(t *tx, lb *lbRec, n *listenerRec, req *api.ModifyListenerRequest) error {
	spec := listenerSpec{Protocol: n.Protocol, Port: n.Port, DefaultActions: n.Actions, SSLPolicy: n.SSLPolicy, CertificateIDs: n.CertificateIDs,
		HostnameScopes: n.HostnameScopes, MutualAuthentication: n.MutualAuthentication}
	if req.Protocol != "" && req.Protocol != n.Protocol {
		spec.Protocol = req.Protocol
		if req.Protocol != api.ProtocolHTTPS {
			// Only HTTPS listeners hold them, and TLS ones given certificates (terminating).
			spec.SSLPolicy, spec.CertificateIDs, spec.HostnameScopes, spec.MutualAuthentication = "", nil, nil, nil
		}
	}
	if req.HostnameScopes != nil {
		spec.HostnameScopes = *req.HostnameScopes
	}
	mtls, err := modifiedMutualAuthentication(spec.MutualAuthentication, req.MutualAuthentication)
	if err != nil {
		return err
	}
	spec.MutualAuthentication = mtls
	if req.Port != 0 {
		spec.Port = req.Port
	}
	if len(req.DefaultActions) > 0 {
		spec.DefaultActions = req.DefaultActions
	}
	if req.SSLPolicy != "" {
		spec.SSLPolicy = req.SSLPolicy
	}
	if len(req.Certificates) == 1 {
		def := req.Certificates[0].CertificateID
		// The new default replaces the old one, as in ELBv2; the others stay.
		var others []string
		if len(spec.CertificateIDs) > 1 {
			others = slices.DeleteFunc(slices.Clone(spec.CertificateIDs[1:]), func(id string) bool { return id == def })
		}
		spec.CertificateIDs = append([]string{def}, others...)
	}
	return s.buildALBListener(t, lb, n, spec)
}

func modifyNLBListener(t *tx, lb *lbRec, n *listenerRec, req *api.ModifyListenerRequest) error {
	if req.SSLPolicy != "" || len(req.Certificates) > 0 || req.HostnameScopes != nil || req.MutualAuthentication != nil {
		return invalid("SslPolicy, Certificates, HostnameScopes and MutualAuthentication apply to HTTPS listeners of application load balancers only")
	}
	if req.Protocol != "" {
		n.Protocol = req.Protocol
	}
	if req.Port != 0 {
		n.Port = req.Port
	}
	actions := []api.Action{{Type: api.ActionTypeForward, TargetGroupID: n.TargetGroupID}}
	if len(req.DefaultActions) > 0 {
		actions = req.DefaultActions
	}
	act, err := validateNLBListener(n.Protocol, actions)
	if err != nil {
		return err
	}
	tg, err := getTG(t.Txn, act.TargetGroupID)
	if err != nil {
		return err
	}
	if err := checkForward(t, lb, tg, n.Protocol); err != nil {
		return err
	}
	n.TargetGroupID = tg.ID
	n.PortKey = fmt.Sprintf("%s/%s/%d", lb.ID, n.Protocol, n.Port)
	return nil
}

// AddListenerCertificates adds certificates an HTTPS listener serves to clients whose SNI
// name they match; certificates it already holds are left as they are.
func (s *Store) AddListenerCertificates(c Call, req *api.AddListenerCertificatesRequest) (*api.AddListenerCertificatesResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionAddListenerCertificates); err != nil {
		return nil, err
	}
	if len(req.Certificates) == 0 {
		return nil, invalid("Certificates is required")
	}
	return write(s, c, api.ActionAddListenerCertificates, "", req, func(t *tx) (*api.AddListenerCertificatesResponse, error) {
		old, err := getHTTPSListener(t, req.ListenerID)
		if err != nil {
			return nil, err
		}
		n := *old
		n.CertificateIDs = slices.Clone(old.CertificateIDs)
		for i, lc := range req.Certificates {
			if lc.IsDefault {
				return nil, invalid("Certificates[%d].IsDefault: AddListenerCertificates adds non-default certificates; change the default with ModifyListener", i)
			}
			if lc.CertificateID == "" {
				return nil, invalid("Certificates[%d].CertificateId is required", i)
			}
			if !slices.Contains(n.CertificateIDs, lc.CertificateID) {
				n.CertificateIDs = append(n.CertificateIDs, lc.CertificateID)
			}
		}
		if err := checkListenerCertificates(t, n.CertificateIDs, s.cfg.ALBLimits); err != nil {
			return nil, err
		}
		if !slices.Equal(n.CertificateIDs, old.CertificateIDs) {
			if err := t.putListener(old, &n); err != nil {
				return nil, err
			}
		}
		return &api.AddListenerCertificatesResponse{Certificates: newViewer(t.Txn, c).listener(&n).Certificates}, nil
	})
}

// RemoveListenerCertificates removes certificates other than the default one; a certificate
// the listener does not hold is ignored.
func (s *Store) RemoveListenerCertificates(c Call, req *api.RemoveListenerCertificatesRequest) (*api.RemoveListenerCertificatesResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionRemoveListenerCertificates); err != nil {
		return nil, err
	}
	if len(req.Certificates) == 0 {
		return nil, invalid("Certificates is required")
	}
	return write(s, c, api.ActionRemoveListenerCertificates, "", req, func(t *tx) (*api.RemoveListenerCertificatesResponse, error) {
		old, err := getHTTPSListener(t, req.ListenerID)
		if err != nil {
			return nil, err
		}
		n := *old
		n.CertificateIDs = slices.Clone(old.CertificateIDs)
		for i, lc := range req.Certificates {
			if lc.CertificateID == old.CertificateIDs[0] {
				return nil, api.Errorf(api.CodeOperationNotPermitted, "Certificates[%d]: %s is the listener's default certificate; set another default with ModifyListener first", i, lc.CertificateID)
			}
			n.CertificateIDs = slices.DeleteFunc(n.CertificateIDs, func(id string) bool { return id == lc.CertificateID })
		}
		if !slices.Equal(n.CertificateIDs, old.CertificateIDs) {
			if err := t.putListener(old, &n); err != nil {
				return nil, err
			}
		}
		return &api.RemoveListenerCertificatesResponse{}, nil
	})
}

func getHTTPSListener(t *tx, id string) (*listenerRec, error) {
	l, err := getListener(t.Txn, id)
	if err != nil {
		return nil, err
	}
	if l.Protocol != api.ProtocolHTTPS && (l.Protocol != api.ProtocolTLS || len(l.CertificateIDs) == 0) {
		return nil, api.Errorf(api.CodeInvalidConfigurationRequest, "listener %s is %s; certificates belong to HTTPS listeners and TLS listeners that terminate TLS", l.ID, l.Protocol)
	}
	return l, nil
}

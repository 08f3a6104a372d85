package gateway

import (
	"cmp"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Kinds a BackendTLSPolicy names.
const (
	KindBackendTLSPolicy = "BackendTLSPolicy"
	KindConfigMap        = "ConfigMap"
)

// caCertificateKey is the key of a CA ConfigMap that holds the PEM bundle.
const caCertificateKey = "ca.crt"

// maxCABundle bounds the PEM certificates a target group or listener verifies with, as the cloud
// does (fakecloud: 64 KiB): a bigger bundle is refused at translation, where it is the
// policy's or the listener's problem, not at deploy, where it would stop the whole Gateway.
const maxCABundle = 64 << 10

// errCABundleTooBig is a bundle over maxCABundle.
func errCABundleTooBig(n int) error {
	return fmt.Errorf("the CA certificates come to %d bytes of PEM; the load balancer takes at most %d", n, maxCABundle)
}

// tlsPolicy is one BackendTLSPolicy as this translation judged it.
type tlsPolicy struct {
	obj *gwv1.BackendTLSPolicy
	// tls is what the load balancer verifies targets with; nil when the policy cannot be used
	// (acceptReason set): the backends it targets get a 500 rather than unverified traffic.
	tls *BackendTLS
	// acceptReason and acceptMsg: why the policy is not accepted ("": it is).
	acceptReason, acceptMsg string
	// refsReason and refsMsg: why a CA certificate reference does not resolve ("": they all do).
	refsReason, refsMsg string
	// lost are the targets ("ns/service" or "ns/service/section") where an older policy
	// takes precedence.
	lost []string
	// ancestors are the Gateways ("ns/name") whose routes send to a Service port the policy
	// targets, whether or not it takes effect there.
	ancestors map[string]bool
}

// policyTarget is a Service, or one port of it by name (section), that policies target.
type policyTarget struct {
	ns, svc, section string
}

func (p policyTarget) String() string {
	if p.section == "" {
		return key(p.ns, p.svc)
	}
	return key(p.ns, p.svc) + " port " + p.section
}

// indexPolicies judges every BackendTLSPolicy and finds, for each target, the policy that
// takes precedence there: the oldest, then the first by namespace/name.
func (t *translation) indexPolicies() {
	ps := make([]*gwv1.BackendTLSPolicy, len(t.in.BackendTLSPolicies))
	for i := range t.in.BackendTLSPolicies {
		ps[i] = &t.in.BackendTLSPolicies[i]
	}
	slices.SortFunc(ps, func(a, b *gwv1.BackendTLSPolicy) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(key2(a), key2(b))
	})
	t.policies = map[policyTarget][]*tlsPolicy{}
	for _, obj := range ps {
		p := &tlsPolicy{obj: obj, ancestors: map[string]bool{}}
		t.judgePolicy(p)
		for _, ref := range obj.Spec.TargetRefs {
			if ref.Group != "" || ref.Kind != KindService {
				continue // the CRD allows Services only; another kind targets nothing of ours
			}
			pt := policyTarget{obj.Namespace, string(ref.Name), string(ptrOr(ref.SectionName, ""))}
			if len(t.policies[pt]) > 0 {
				p.lost = append(p.lost, pt.String())
			}
			t.policies[pt] = append(t.policies[pt], p)
		}
	}
}

// judgePolicy resolves a policy's CA certificates and says whether it can be used.
func (t *translation) judgePolicy(p *tlsPolicy) {
	v := &p.obj.Spec.Validation
	tls := &BackendTLS{ServerName: string(v.Hostname)}
	for _, san := range v.SubjectAltNames {
		switch san.Type {
		case gwv1.HostnameSubjectAltNameType:
			tls.SubjectAltNames = append(tls.SubjectAltNames, SubjectAltName{Type: SANHostname, Value: string(san.Hostname)})
		case gwv1.URISubjectAltNameType:
			tls.SubjectAltNames = append(tls.SubjectAltNames, SubjectAltName{Type: SANURI, Value: string(san.URI)})
		default:
			p.acceptReason, p.acceptMsg = string(gwv1.PolicyReasonInvalid), fmt.Sprintf("subjectAltNames: type %q is neither Hostname nor URI", san.Type)
			return
		}
	}
	var bundle strings.Builder
	var bad []string
	for i, ref := range v.CACertificateRefs {
		where := fmt.Sprintf("caCertificateRefs[%d]", i)
		if ref.Group != "" || ref.Kind != KindConfigMap {
			p.refsReason = string(gwv1.BackendTLSPolicyReasonInvalidKind)
			kind := string(ref.Kind)
			if ref.Group != "" {
				kind += "." + string(ref.Group)
			}
			bad = append(bad, fmt.Sprintf("%s: %s %s: only core ConfigMaps hold CA certificates", where, kind, ref.Name))
			continue
		}
		pem, err := t.caBundle(p.obj.Namespace, string(ref.Name))
		if err != nil {
			if p.refsReason == "" {
				p.refsReason = string(gwv1.BackendTLSPolicyReasonInvalidCACertificateRef)
			}
			bad = append(bad, fmt.Sprintf("%s: ConfigMap %s: %v", where, key(p.obj.Namespace, string(ref.Name)), err))
			continue
		}
		bundle.WriteString(pem)
	}
	p.refsMsg = strings.Join(bad, "; ")
	if bundle.Len() > maxCABundle {
		p.acceptReason, p.acceptMsg = string(gwv1.PolicyReasonInvalid), errCABundleTooBig(bundle.Len()).Error()
		return
	}
	switch wk := ptrOr(v.WellKnownCACertificates, ""); {
	case len(v.CACertificateRefs) > 0 && bundle.Len() == 0:
		p.acceptReason = string(gwv1.BackendTLSPolicyReasonNoValidCACertificate)
		p.acceptMsg = "no CA certificate reference resolves: " + p.refsMsg
		return
	case len(v.CACertificateRefs) > 0:
		tls.CAPEM = bundle.String()
	case wk == gwv1.WellKnownCACertificatesSystem:
		tls.SystemRoots = true
	case wk != "":
		p.acceptReason, p.acceptMsg = string(gwv1.PolicyReasonInvalid), fmt.Sprintf("wellKnownCACertificates %q is not supported; \"System\" is", wk)
		return
	default:
		p.acceptReason, p.acceptMsg = string(gwv1.PolicyReasonInvalid), "validation names neither caCertificateRefs nor wellKnownCACertificates"
		return
	}
	if t.in.NoBackendTLSVerification {
		p.acceptReason, p.acceptMsg = string(gwv1.PolicyReasonInvalid),
			"the cloud's load balancers do not verify their targets' certificates (the AWS driver: ELBv2 does not); its backends are refused rather than sent unverified"
		return
	}
	p.tls = tls
}

// caBundle is the PEM certificates of a CA ConfigMap's ca.crt, or why there are none.
func (t *translation) caBundle(ns, name string) (string, error) {
	cm := t.configMaps[key(ns, name)]
	if cm == nil {
		return "", fmt.Errorf("does not exist")
	}
	data, ok := cm.Data[caCertificateKey]
	if !ok {
		return "", fmt.Errorf("has no key %q", caCertificateKey)
	}
	rest := []byte(data)
	var out strings.Builder
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return "", fmt.Errorf("%s holds a certificate that does not parse: %w", caCertificateKey, err)
		}
		out.Write(pem.EncodeToMemory(b))
	}
	if out.Len() == 0 {
		return "", fmt.Errorf("%s holds no PEM certificate", caCertificateKey)
	}
	if out.Len() > maxCABundle {
		return "", errCABundleTooBig(out.Len())
	}
	return out.String(), nil
}

// backendPolicy is the policy that decides how the load balancer speaks to a Service port: the
// one that takes precedence on the port by name, else on the whole Service. Every policy
// targeting the port or the Service records gw as an ancestor. nil: none targets it.
func (t *translation) backendPolicy(gw string, b backend) *tlsPolicy {
	sections := []string{""}
	if b.port.Name != "" {
		sections = []string{b.port.Name, ""}
	}
	var found *tlsPolicy
	for _, section := range sections {
		ps := t.policies[policyTarget{b.svc.Namespace, b.svc.Name, section}]
		for _, p := range ps {
			p.ancestors[gw] = true
		}
		if found == nil && len(ps) > 0 {
			found = ps[0]
		}
	}
	return found
}

// PolicyStatus is our part of a policy's status: one entry per Gateway of ours whose routes
// send to what the policy targets.
type PolicyStatus struct {
	Kind      string                      `json:"kind"`
	Namespace string                      `json:"namespace"`
	Name      string                      `json:"name"`
	Ancestors []gwv1.PolicyAncestorStatus `json:"ancestors"`
}

// usedPolicies are the policies with an ancestor of ours (a Gateway whose routes use what they
// target), each once, sorted by namespace and name: those we give a status and events.
func (t *translation) usedPolicies() []*tlsPolicy {
	seen := map[*tlsPolicy]bool{}
	var out []*tlsPolicy
	for _, ps := range t.policies {
		for _, p := range ps {
			if !seen[p] && len(p.ancestors) > 0 {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	slices.SortFunc(out, func(a, b *tlsPolicy) int {
		return cmp.Or(strings.Compare(a.obj.Namespace, b.obj.Namespace), strings.Compare(a.obj.Name, b.obj.Name))
	})
	return out
}

// MaxPolicyAncestors is the CRD's bound on a policy's status.ancestors (ours and other
// controllers' together).
const MaxPolicyAncestors = 16

func (t *translation) policyStatus(p *tlsPolicy) PolicyStatus {
	gen := p.obj.Generation
	accepted := condition(string(gwv1.PolicyConditionAccepted), true, string(gwv1.PolicyReasonAccepted),
		"the load balancer verifies the targets' certificates as the policy says", gen)
	switch {
	case len(p.lost) > 0:
		accepted = condition(string(gwv1.PolicyConditionAccepted), false, string(gwv1.PolicyReasonConflicted),
			"an older BackendTLSPolicy (or the first by namespace/name) targets "+strings.Join(p.lost, ", ")+" too and takes precedence there", gen)
	case p.acceptReason != "":
		accepted = condition(string(gwv1.PolicyConditionAccepted), false, p.acceptReason, p.acceptMsg, gen)
	}
	refs := condition(string(gwv1.BackendTLSPolicyConditionResolvedRefs), true, string(gwv1.BackendTLSPolicyReasonResolvedRefs),
		"every CA certificate reference resolves", gen)
	if p.refsReason != "" {
		refs = condition(string(gwv1.BackendTLSPolicyConditionResolvedRefs), false, p.refsReason, p.refsMsg, gen)
	}
	gws := make([]string, 0, len(p.ancestors))
	for g := range p.ancestors {
		gws = append(gws, g)
	}
	slices.Sort(gws)
	if len(gws) > MaxPolicyAncestors {
		gws = gws[:MaxPolicyAncestors]
	}
	st := PolicyStatus{Kind: KindBackendTLSPolicy, Namespace: p.obj.Namespace, Name: p.obj.Name}
	group, kind := gwv1.Group(Group), gwv1.Kind(KindGateway)
	for _, g := range gws {
		ns, name, _ := strings.Cut(g, "/")
		gns := gwv1.Namespace(ns)
		st.Ancestors = append(st.Ancestors, gwv1.PolicyAncestorStatus{
			AncestorRef:    gwv1.ParentReference{Group: &group, Kind: &kind, Namespace: &gns, Name: gwv1.ObjectName(name)},
			ControllerName: t.controller,
			Conditions:     []metav1.Condition{accepted, refs},
		})
	}
	return st
}

// policyEvents are the Warning events of the policies with an ancestor of ours that are not
// accepted or whose references do not resolve.
func (t *translation) policyEvents(ps []*tlsPolicy) {
	for _, p := range ps {
		switch {
		case len(p.lost) > 0:
			t.event(KindBackendTLSPolicy, p.obj.Namespace, p.obj.Name, string(gwv1.PolicyReasonConflicted),
				"an older BackendTLSPolicy targets %s too and takes precedence there", strings.Join(p.lost, ", "))
		case p.acceptReason != "":
			t.event(KindBackendTLSPolicy, p.obj.Namespace, p.obj.Name, p.acceptReason, "%s", p.acceptMsg)
		case p.refsReason != "":
			t.event(KindBackendTLSPolicy, p.obj.Namespace, p.obj.Name, p.refsReason, "%s", p.refsMsg)
		}
	}
}

// nameParts are what a target group's name covers of its TLS settings.
func (b *BackendTLS) nameParts() []string {
	parts := []string{"tls", b.ServerName, b.CAPEM, fmt.Sprint(b.SystemRoots)}
	for _, san := range b.SubjectAltNames {
		parts = append(parts, san.Type, san.Value)
	}
	return parts
}

package lbcontroller

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/lbcontroller/gateway"
)

// The objects Gateways and BackendTLSPolicies name that the translation needs beside the cache's
// lists: certificate Secrets the cache does not hold (only their type), and CA ConfigMaps.

// untypedSecrets finds the certificate Secrets our Gateways name that the cache does not hold
// because they are not of type kubernetes.io/tls (it lists no other type), so that the
// listener's condition says the type is wrong rather than that the Secret does not exist. It
// reads each such Secret from the API server and keeps only its name and type; a Secret in
// another namespace only when a ReferenceGrant lets the Gateway use it. A Secret that is not
// there, cannot be read, or is of type kubernetes.io/tls after all (the cache has yet to see
// it) is left out: the translation says it does not exist, until the cache catches up. What a
// read found is kept for secretLookupTTL, so a Gateway naming a Secret that does not exist
// costs one read per TTL, not one per pass.
//
// The cache watches no such Secret, so nothing starts a pass when one is created or deleted:
// uncached reports that a Secret the cache does not hold was named, and the pass comes back
// after secretLookupTTL to read it again.
func (r *gatewayReconciler) untypedSecrets(ctx context.Context, classes []gwv1.GatewayClass, gws []gwv1.Gateway, sets []gwv1.ListenerSet,
	cached []corev1.Secret, grants []gwv1.ReferenceGrant) (out []corev1.Secret, uncached bool) {
	ours := map[string]bool{}
	for _, c := range classes {
		if c.Spec.ControllerName == gateway.ControllerName {
			ours[c.Name] = true
		}
	}
	// Who names certificates: our Gateways, and the ListenerSets naming one as their parent
	// (whether it takes them or not: a Secret is only read, and its type is all that is kept).
	type user struct {
		ns, kind string
		refs     []gwv1.SecretObjectReference
	}
	var users []user
	oursGW := map[string]bool{}
	for _, g := range gws {
		if !ours[string(g.Spec.GatewayClassName)] {
			continue
		}
		oursGW[g.Namespace+"/"+g.Name] = true
		u := user{ns: g.Namespace, kind: gateway.KindGateway}
		for _, l := range g.Spec.Listeners {
			if l.TLS != nil {
				u.refs = append(u.refs, l.TLS.CertificateRefs...)
			}
		}
		if t := g.Spec.TLS; t != nil && t.Backend != nil && t.Backend.ClientCertificateRef != nil {
			u.refs = append(u.refs, *t.Backend.ClientCertificateRef)
		}
		users = append(users, u)
	}
	for i := range sets {
		s := &sets[i]
		if parent, ok := gateway.ListenerSetParent(s); !ok || !oursGW[parent] {
			continue
		}
		u := user{ns: s.Namespace, kind: gateway.KindListenerSet}
		for _, l := range s.Spec.Listeners {
			if l.TLS != nil {
				u.refs = append(u.refs, l.TLS.CertificateRefs...)
			}
		}
		users = append(users, u)
	}
	have := map[types.NamespacedName]bool{}
	for _, s := range cached {
		have[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}] = true
	}
	now := r.now()
	for k, l := range r.secretLookups {
		if now.Sub(l.at) >= secretLookupTTL {
			delete(r.secretLookups, k)
		}
	}
	for _, g := range users {
		for _, ref := range g.refs {
			if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Secret") {
				continue
			}
			key := types.NamespacedName{Namespace: g.ns, Name: string(ref.Name)}
			if ref.Namespace != nil {
				key.Namespace = string(*ref.Namespace)
			}
			if have[key] || (key.Namespace != g.ns && !grantsSecret(grants, g.kind, g.ns, key)) {
				continue
			}
			have[key] = true
			look, ok := r.secretLookups[key]
			if !ok {
				look = secretLookup{at: now}
				var sec corev1.Secret
				switch err := r.reader.Get(ctx, key, &sec); {
				case err == nil:
					look.typ = sec.Type
				case !apierrors.IsNotFound(err):
					r.log.V(1).Info("reading a certificate Secret the cache does not hold", "secret", key.String(), "err", err.Error())
					uncached = true
					continue // not remembered: the next pass reads it again
				}
				if r.secretLookups == nil {
					r.secretLookups = map[types.NamespacedName]secretLookup{}
				}
				r.secretLookups[key] = look
			}
			uncached = true
			if look.typ != "" && look.typ != corev1.SecretTypeTLS {
				out = append(out, corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}, Type: look.typ})
			}
		}
	}
	return out, uncached
}

// caConfigMaps are the ConfigMaps that BackendTLSPolicies and our Gateways' client certificate
// validation (spec.tls.frontend) name as CA certificates. The cache holds every ConfigMap's
// metadata only (a CA may be created after what names it, and a cluster's ConfigMaps can be
// large and many): a named ConfigMap the metadata shows is read from the API server when its
// resourceVersion is not the one last read, and kept (caMemo) while something names it.
func (r *gatewayReconciler) caConfigMaps(ctx context.Context, policies []gwv1.BackendTLSPolicy, gws []gwv1.Gateway) ([]corev1.ConfigMap, error) {
	type named struct {
		k     types.NamespacedName
		owner string
	}
	var refs []named
	for i := range policies {
		p := &policies[i]
		for _, ref := range p.Spec.Validation.CACertificateRefs {
			if ref.Group == "" && ref.Kind == gateway.KindConfigMap {
				refs = append(refs, named{types.NamespacedName{Namespace: p.Namespace, Name: string(ref.Name)}, "BackendTLSPolicy " + p.Namespace + "/" + p.Name})
			}
		}
	}
	for i := range gws {
		g := &gws[i]
		if g.Spec.TLS == nil || g.Spec.TLS.Frontend == nil {
			continue
		}
		cfgs := []gwv1.TLSConfig{g.Spec.TLS.Frontend.Default}
		for _, pp := range g.Spec.TLS.Frontend.PerPort {
			cfgs = append(cfgs, pp.TLS)
		}
		for _, c := range cfgs {
			if c.Validation == nil {
				continue
			}
			for _, ref := range c.Validation.CACertificateRefs {
				if ref.Group == "" && ref.Kind == gateway.KindConfigMap {
					ns := g.Namespace
					if ref.Namespace != nil {
						ns = string(*ref.Namespace)
					}
					refs = append(refs, named{types.NamespacedName{Namespace: ns, Name: string(ref.Name)}, "Gateway " + g.Namespace + "/" + g.Name})
				}
			}
		}
	}
	// The names go to the watch's predicate before the reads: a ConfigMap created after a read
	// found nothing wakes a pass, as its event comes after the names are stored.
	seen := map[types.NamespacedName]bool{}
	for _, n := range refs {
		seen[n.k] = true
	}
	r.caRefs.Store(&seen)
	var out []corev1.ConfigMap
	memo := map[types.NamespacedName]*corev1.ConfigMap{}
	for _, n := range refs {
		if _, done := memo[n.k]; done {
			continue
		}
		memo[n.k] = nil
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
		switch err := r.client.Get(ctx, n.k, meta); {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return nil, fmt.Errorf("read the metadata of CA ConfigMap %s of %s: %w", n.k, n.owner, err)
		}
		cm := r.caMemo[n.k]
		if cm == nil || cm.ResourceVersion != meta.ResourceVersion {
			cm = &corev1.ConfigMap{}
			switch err := r.reader.Get(ctx, n.k, cm); {
			case apierrors.IsNotFound(err):
				continue // deleted since the cache saw it: its deletion brings the next pass
			case err != nil:
				return nil, fmt.Errorf("read CA ConfigMap %s of %s: %w", n.k, n.owner, err)
			}
			cm.ManagedFields = nil
		}
		memo[n.k] = cm
		out = append(out, *cm)
	}
	for k, cm := range memo {
		if cm == nil {
			delete(memo, k)
		}
	}
	r.caMemo = memo
	return out, nil
}

// secretLookupTTL is how long untypedSecrets keeps what a read of a Secret found.
const secretLookupTTL = 10 * time.Second

// secretLookup is what a read of a Secret the cache does not hold found: its type, or none
// when it does not exist.
type secretLookup struct {
	at  time.Time
	typ corev1.SecretType
}

// grantsSecret reports whether a ReferenceGrant lets Gateways of namespace from use Secret s.
func grantsSecret(grants []gwv1.ReferenceGrant, fromKind, from string, s types.NamespacedName) bool {
	return slices.ContainsFunc(grants, func(g gwv1.ReferenceGrant) bool {
		return g.Namespace == s.Namespace && gateway.GrantAllows(&g, gateway.Group, fromKind, from, "", gateway.KindSecret, s.Name)
	})
}

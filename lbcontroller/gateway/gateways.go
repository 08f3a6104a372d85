package gateway

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/lbcontroller/model"
)

// gateway is one Gateway of ours being translated.
type gateway struct {
	obj       *gwv1.Gateway
	listeners []*listener
	// acceptReason/acceptMsg: set when the Gateway as a whole is not accepted.
	acceptReason, acceptMsg string
	// address is the static address spec.addresses asks for ("": the cloud's choice);
	// addressReason and addressMsg say why the Gateway cannot be programmed with the addresses
	// asked for (AddressNotUsable or AddressNotAssigned).
	address, addressReason, addressMsg string
	// tags are spec.infrastructure.labels, those the cloud can take as tags.
	tags map[string]string
	// clientCert is the certificate spec.tls.backend.clientCertificateRef names, which the load
	// balancer presents to backends it speaks TLS to; clientRefReason and clientRefMsg say why
	// there is none although the Gateway names one.
	clientCert                    *Certificate
	clientRefReason, clientRefMsg string
	// sets are the ListenerSets naming the Gateway as their parent, in precedence order.
	sets []*listenerSet
	// accepted is the Gateway's Accepted condition (set by gatewayStatus).
	accepted bool
	tr       *translation
}

func (g *gateway) key() string { return key(g.obj.Namespace, g.obj.Name) }

func (g *gateway) eventf(reason, format string, args ...any) {
	g.tr.event(KindGateway, g.obj.Namespace, g.obj.Name, reason, format, args...)
}

// buildGateways validates the listeners of every Gateway of an accepted class of ours.
func (t *translation) buildGateways(classes map[string]bool) []*gateway {
	gws := make([]*gwv1.Gateway, 0, len(t.in.Gateways))
	for i := range t.in.Gateways {
		if classes[string(t.in.Gateways[i].Spec.GatewayClassName)] {
			gws = append(gws, &t.in.Gateways[i])
		}
	}
	slices.SortFunc(gws, func(a, b *gwv1.Gateway) int {
		return strings.Compare(key(a.Namespace, a.Name), key(b.Namespace, b.Name))
	})
	out := make([]*gateway, 0, len(gws))
	for _, obj := range gws {
		g := &gateway{obj: obj, tr: t}
		if _, dup := t.gateways[g.key()]; dup {
			continue
		}
		t.gateways[g.key()] = g
		out = append(out, g)
		names := map[gwv1.SectionName]bool{}
		for _, spec := range obj.Spec.Listeners {
			if names[spec.Name] {
				continue // the API server refuses duplicate names; a snapshot may not have
			}
			names[spec.Name] = true
			g.listeners = append(g.listeners, t.listener(g, nil, spec))
		}
		markConflicts(g.listeners, !t.in.NoTLSRouteTermination)
		for _, l := range g.listeners {
			t.finishListener(l)
		}
		t.buildListenerSets(g)
		t.backendClientCertificate(g)
		var unsupported string
		g.address, g.addressReason, g.addressMsg, unsupported = t.addresses(obj.Spec.Addresses)
		switch {
		case unsupported != "":
			g.acceptReason, g.acceptMsg = string(gwv1.GatewayReasonUnsupportedAddress), unsupported
		case obj.Spec.Infrastructure != nil && obj.Spec.Infrastructure.ParametersRef != nil:
			g.acceptReason = string(gwv1.GatewayReasonInvalidParameters)
			g.acceptMsg = "spec.infrastructure.parametersRef is not supported: flatnet takes no parameters; remove it"
		}
		if g.acceptReason != "" {
			g.eventf(g.acceptReason, "%s", g.acceptMsg)
		} else if g.addressReason != "" {
			g.eventf(g.addressReason, "%s", g.addressMsg)
		}
		g.infrastructureTags()
	}
	return out
}

// infrastructureTags takes spec.infrastructure.labels as the tags of the Gateway's cloud
// resources: the cloud's labels. A label the cloud cannot take as a tag (a key of flatnet's or
// the cloud's own, or longer than the cloud's limit) is left out, with a warning Event; the
// rest apply. Annotations have no counterpart on a cloud load balancer and are not applied.
func (g *gateway) infrastructureTags() {
	inf := g.obj.Spec.Infrastructure
	if inf == nil {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(inf.Labels)) {
		v := string(inf.Labels[k])
		if problem := model.UserTagProblem(string(k), v); problem != "" {
			g.eventf(ReasonLabelNotApplied, "spec.infrastructure.labels[%q] is not applied as a tag of the cloud's load balancer: %s", k, problem)
			continue
		}
		if g.tags == nil {
			g.tags = map[string]string{}
		}
		g.tags[string(k)] = v
	}
}

// addresses reads a Gateway's spec.addresses: the static address asked for ("" when none: the
// cloud assigns one; an entry of type IPAddress without a value asks for "an address, any":
// GatewayAddressEmpty); or why the Gateway cannot be programmed with them (reason
// AddressNotUsable: a value that is not an IPv4 address, or more than one entry with a value;
// AddressNotAssigned: more than one entry without, for a load balancer with one address); or
// why they are not supported at all (a type other than IPAddress, or any value when the cloud
// takes none: Input.NoStaticAddresses).
func (t *translation) addresses(as []gwv1.GatewaySpecAddress) (address, reason, msg, unsupported string) {
	values := 0
	for i, a := range as {
		if a.Type != nil && *a.Type != gwv1.IPAddressType {
			return "", "", "", fmt.Sprintf("spec.addresses[%d]: type %q is not supported: the load balancer has an IP address; use type IPAddress", i, *a.Type)
		}
		if a.Value == "" {
			continue
		}
		if t.in.NoStaticAddresses {
			return "", "", "", "spec.addresses with a value is not supported by this cloud's load balancers: the cloud assigns the address; " +
				"remove spec.addresses, or give one entry of type IPAddress without a value"
		}
		values++
		ip, err := netip.ParseAddr(a.Value)
		if err != nil || !ip.Is4() {
			return "", string(gwv1.GatewayReasonAddressNotUsable), fmt.Sprintf("spec.addresses[%d]: %q is not an IPv4 address; the cloud's load balancers have IPv4 addresses", i, a.Value), ""
		}
		address = ip.String()
	}
	if len(as) > 1 {
		reason = string(gwv1.GatewayReasonAddressNotAssigned)
		if values > 0 {
			reason = string(gwv1.GatewayReasonAddressNotUsable)
		}
		return "", reason, fmt.Sprintf("spec.addresses asks for %d addresses; the Gateway's load balancer has one: give one entry", len(as)), ""
	}
	return address, "", "", ""
}

package cni

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/flatnet/flatnet/internal/failpoint"
)

// cmdDel removes the datapath and releases the address. It is idempotent and succeeds when the
// netns, the links or the allocation are already gone; when ipamd is down it still removes the
// datapath and spools the release.
func cmdDel(inv *invocation) error {
	owner := inv.owner()
	if err := validOwner(owner); err != nil {
		return err
	}
	s := inv.spec(owner, nil)
	ip, err := inv.podIP(s)
	if err != nil {
		return cniError(ErrDatapath, "find the pod's address", err)
	}
	s.ip = ip
	// The datapath goes first: an address is never back in the pool while a route points at it.
	if err := teardown(inv.args.Netns, s); err != nil {
		return cniError(ErrDatapath, fmt.Sprintf("remove the datapath of %s", owner.Key()), err)
	}
	failpoint.Hit("cni-del-unwired") // datapath gone, address not released yet
	released, err := inv.release(owner)
	if err != nil && !errors.Is(err, errSpooled) {
		var te *types.Error
		if errors.As(err, &te) {
			return te
		}
		return ipamdError(inv.conf, fmt.Sprintf("release the address of %s", owner.Key()), err)
	}
	if released.IsValid() && released != ip {
		// Neither the previous result nor the host route knew the address: its rules go now.
		if err := deleteRules(released); err != nil {
			return cniError(ErrDatapath, "remove the pod's rules", err)
		}
	}
	return nil
}

// podIP is the pod's address: from the previous result when the runtime sends it, else from the
// host veth's /32 route; invalid when neither exists any more (ipamd's release then says).
func (inv *invocation) podIP(s spec) (netip.Addr, error) {
	if ip := prevResultIP(inv.conf, s.ifName); ip.IsValid() {
		return ip, nil
	}
	return hostLinkIP(s.hostName)
}

// prevResultIP finds the IPv4 address the previous result gives the pod interface ifName.
func prevResultIP(conf *NetConf, ifName string) netip.Addr {
	if conf.PrevResult == nil {
		return netip.Addr{}
	}
	res, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return netip.Addr{}
	}
	for _, ipc := range res.IPs {
		if ipc.Interface == nil || *ipc.Interface < 0 || *ipc.Interface >= len(res.Interfaces) {
			continue
		}
		iface := res.Interfaces[*ipc.Interface]
		if iface.Name != ifName || iface.Sandbox == "" {
			continue
		}
		if ip, ok := netip.AddrFromSlice(ipc.Address.IP.To4()); ok && ipc.Address.IP.To4() != nil {
			return ip
		}
	}
	return netip.Addr{}
}

package ipamd

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/flatnet/flatnet/ipamd/nodenet"
	"github.com/flatnet/flatnet/ipamd/store"
)

// Datapath is what ipamd needs from the node's network: ipamd/nodenet implements it.
type Datapath interface {
	// EnsureBase converges the node-wide settings (sysctls, SNAT).
	EnsureBase(ctx context.Context) error
	// EnsureInterface brings up one cloud interface with its route table and rules.
	EnsureInterface(ctx context.Context, in nodenet.Interface) error
	// RemoveInterface removes what EnsureInterface made for a device index.
	RemoveInterface(ctx context.Context, deviceIndex int) error
}

// NoDatapath programs nothing: for ipamd run outside its node (tests, --datapath=false).
type NoDatapath struct{}

// EnsureBase implements Datapath.
func (NoDatapath) EnsureBase(context.Context) error { return nil }

// EnsureInterface implements Datapath.
func (NoDatapath) EnsureInterface(context.Context, nodenet.Interface) error { return nil }

// RemoveInterface implements Datapath.
func (NoDatapath) RemoveInterface(context.Context, int) error { return nil }

func (d *Daemon) datapath(given Datapath) (Datapath, error) {
	if given != nil {
		return given, nil
	}
	if !d.cfg.Datapath {
		return NoDatapath{}, nil
	}
	n, err := nodenet.New(nodenet.Config{
		VPCCIDRs: d.inst.VPCCIDRs, PrimaryIP: d.primaryIP(), ExternalSNAT: d.cfg.ExternalSNAT,
		SNATExclusions: d.cfg.SNATExclusions, MTU: d.cfg.MTU, TableBase: d.cfg.TableBase, FastPath: d.cfg.FastPath,
		Logger: d.log,
	})
	if err != nil {
		return nil, fmt.Errorf("node datapath: %w", err)
	}
	d.m.reg.MustRegister(fastPathCollector{d})
	return n, nil
}

// linkOf describes a recorded interface to the datapath.
func linkOf(in store.Interface) (nodenet.Interface, error) {
	mac, err := net.ParseMAC(in.MAC)
	if err != nil {
		return nodenet.Interface{}, fmt.Errorf("interface %s has MAC %q: %w", in.ID, in.MAC, err)
	}
	return nodenet.Interface{DeviceIndex: in.DeviceIndex, MAC: mac, PrimaryIP: in.PrimaryIP, SubnetCIDR: in.SubnetCIDR, Gateway: gateway(in.SubnetCIDR)}, nil
}

// gateway is the subnet's router: its first address after the network's (EC2's convention).
func gateway(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

// routeTable is the policy-routing table of a device index; 0 (main) for the primary.
func (d *Daemon) routeTable(deviceIndex int) int {
	if deviceIndex == 0 {
		return 0
	}
	return d.cfg.TableBase + deviceIndex
}

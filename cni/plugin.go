package cni

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// About is what the binary prints to stderr when run without CNI_COMMAND.
const About = "flatnet-cni: pods with underlay VPC addresses from flatnet-ipamd (CNI ADD, DEL, CHECK, STATUS, GC, VERSION)"

// Policy-routing priorities, as ipamd/wire fixes them for both sides.
const (
	priorityToPod   = wire.PriorityToPod
	priorityFromPod = wire.PriorityFromPod
)

var supportedVersions = []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// VersionInfo lists the CNI spec versions flatnet speaks.
func VersionInfo() version.PluginInfo { return version.PluginSupports(supportedVersions...) }

// Funcs are the verb handlers main hands to skel.
func Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{
		Add:    run("ADD", cmdAdd),
		Del:    run("DEL", cmdDel),
		Check:  run("CHECK", cmdCheck),
		Status: run("STATUS", cmdStatus),
		GC:     run("GC", cmdGC),
	}
}

// invocation is one run of the plugin: its config, arguments and log.
type invocation struct {
	verb string
	conf *NetConf
	args *skel.CmdArgs
	log  *fileLog
}

func (inv *invocation) owner() wire.Owner {
	return wire.Owner{Network: inv.conf.Name, ContainerID: inv.args.ContainerID, IfName: inv.args.IfName}
}

// call sends one request to ipamd within the configured timeout.
func (inv *invocation) call(req *wire.Request) (*wire.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), inv.conf.Timeout())
	defer cancel()
	start := time.Now()
	resp, err := wire.Call(ctx, inv.conf.IpamdSocket, req)
	inv.log.printf("ipamd %s: %s err=%v", req.Op, time.Since(start).Round(time.Microsecond), err)
	return resp, err
}

// run parses the config, opens the log, calls the verb and logs its outcome. Only the verb's
// result (written by the verb) or skel's error JSON reach stdout.
func run(verb string, fn func(*invocation) error) func(*skel.CmdArgs) error {
	return func(args *skel.CmdArgs) error {
		conf, err := ParseConfig(args.StdinData)
		if err != nil {
			return err
		}
		inv := &invocation{verb: verb, conf: conf, args: args, log: openLog(conf.LogFile, verb, args)}
		defer inv.log.close()
		start := time.Now()
		err = fn(inv)
		if err != nil {
			inv.log.printf("failed after %s: %v", time.Since(start).Round(time.Microsecond), err)
			return err
		}
		inv.log.printf("ok in %s", time.Since(start).Round(time.Microsecond))
		return nil
	}
}

// validOwner checks the attachment identity; code 4 because it comes from CNI_* variables.
func validOwner(o wire.Owner) error {
	if err := o.Validate(); err != nil {
		return types.NewError(types.ErrInvalidEnvironmentVariables,
			fmt.Sprintf("attachment (network %q, CNI_CONTAINERID %q, CNI_IFNAME %q) cannot be used: %v",
				o.Network, o.ContainerID, o.IfName, err), "")
	}
	return nil
}

// stdout is where the result goes; a variable so that nothing else writes there by accident.
var stdout = os.Stdout

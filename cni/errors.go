package cni

import (
	"errors"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// Plugin-specific CNI error codes (the spec reserves 100 and up for plugins).
const (
	// ErrIpamd: ipamd answered with an error that is not one of the codes below.
	ErrIpamd uint = 100
	// ErrNodeFull: the node holds as many addresses as its instance type and subnet allow.
	ErrNodeFull uint = 101
	// ErrDatapath: a netlink operation on the pod's datapath failed.
	ErrDatapath uint = 102
	// ErrProtocol: ipamd speaks another version of ipamd/wire than this plugin.
	ErrProtocol uint = 103
	// ErrInterfaceExists: the pod already has an interface of that name flatnet did not make
	// for this address.
	ErrInterfaceExists uint = 104
	// ErrCheckFailed: CHECK found the datapath differs from what ADD made.
	ErrCheckFailed uint = 105
	// ErrSpool: DEL could neither reach ipamd nor spool the release.
	ErrSpool uint = 106
)

// cniError builds a *types.Error whose message carries err.
func cniError(code uint, msg string, err error) *types.Error {
	if err != nil {
		msg = fmt.Sprintf("%s: %v", msg, err)
	}
	return types.NewError(code, msg, "")
}

// ipamdError turns the result of an ipamd call into a CNI error an operator can act on: ipamd
// not reachable, or ipamd's own answer mapped to the spec's code.
func ipamdError(conf *NetConf, what string, err error) *types.Error {
	var we *wire.Error
	if !errors.As(err, &we) {
		return types.NewError(types.ErrTryAgainLater,
			fmt.Sprintf("%s: ipamd is not running at %s: %v", what, conf.IpamdSocket, dialCause(err)),
			"start flatnet-ipamd on this node (or fix ipamdSocket in the conflist); the runtime retries")
	}
	switch we.Code {
	case wire.CodeTryAgain:
		return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("%s: %s", what, we.Message),
			"ipamd has no free address yet and is asking the cloud for more; the runtime retries")
	case wire.CodeFull:
		return types.NewError(ErrNodeFull, fmt.Sprintf("%s: node is full: %s", what, we.Message),
			"the node holds as many addresses as its instance type and subnet allow; schedule fewer pods here or use a larger instance type")
	case wire.CodeVersion:
		return types.NewError(ErrProtocol, fmt.Sprintf("%s: %s", what, we.Message),
			"flatnet-cni and flatnet-ipamd are of different releases; install the plugin that ships with this ipamd")
	}
	return types.NewError(ErrIpamd, fmt.Sprintf("%s: %v", what, we), "see ipamd's log on this node")
}

// dialCause drops wire.Call's "reach ipamd at <socket>" wrapping from a failure to connect, which
// the message already says, and keeps the system's reason (no such file, connection refused).
func dialCause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op
	}
	return err
}

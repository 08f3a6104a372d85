package cni

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// cmdStatus succeeds only when ipamd answers that it can serve an ADD now; otherwise it returns
// 50 (plugin not available) or 51 (limited connectivity), as ipamd says, with ipamd's reason.
func cmdStatus(inv *invocation) error {
	resp, err := inv.call(&wire.Request{Op: wire.OpStatus, Status: &wire.StatusRequest{}})
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("ipamd at %s cannot say whether it is ready: %v", inv.conf.IpamdSocket, we), "see ipamd's log on this node")
	case err != nil:
		return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("ipamd is not running at %s: %v", inv.conf.IpamdSocket, dialCause(err)),
			"start flatnet-ipamd on this node (or fix ipamdSocket in the conflist)")
	case resp.Status == nil:
		return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("ipamd at %s answered status without a status", inv.conf.IpamdSocket), "")
	case resp.Status.Ready:
		return nil
	}
	st := resp.Status
	code := types.ErrPluginNotAvailable
	if st.Code == int(types.ErrLimitedConnectivity) {
		code = types.ErrLimitedConnectivity
	}
	reason := st.Reason
	if reason == "" {
		reason = "no reason given"
	}
	return types.NewError(code, fmt.Sprintf("ipamd is not ready: %s (free %d, assigned %d, capacity %d)", reason, st.Free, st.Assigned, st.Capacity), "")
}

package cni

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// PluginType is the "type" of flatnet in a conflist.
const PluginType = "flatnet"

// DefaultTimeout bounds one ipamd call when the config sets no timeoutSeconds. An ADD may wait
// for ipamd to lease an address from the cloud when its warm pool is empty.
const DefaultTimeout = 10 * time.Second

// maxTimeoutSeconds keeps a typo (an hour in seconds) from hanging a runtime.
const maxTimeoutSeconds = 600

// minMTU and maxMTU are what a veth accepts (68 is IPv4's minimum).
const (
	minMTU = 68
	maxMTU = 65535
)

// NetConf is flatnet's network configuration: the standard fields plus its own.
type NetConf struct {
	types.PluginConf

	// IpamdSocket is ipamd's unix socket (default wire.DefaultSocket).
	IpamdSocket string `json:"ipamdSocket,omitempty"`
	// SpoolDir is where DEL leaves releases ipamd could not take (default wire.DefaultSpoolDir).
	SpoolDir string `json:"spoolDir,omitempty"`
	// MTU overrides the MTU ipamd reports for the pod's veth (0: ipamd's, else 1500).
	MTU int `json:"mtu,omitempty"`
	// LogFile, when set, receives one line per verb and per failure.
	LogFile string `json:"logFile,omitempty"`
	// TimeoutSeconds bounds each ipamd call (default 10).
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`

	// LegacyAttachments is the spec's first name for ValidAttachments; runtimes send both.
	LegacyAttachments []types.GCAttachment `json:"cni.dev/attachments,omitempty"`
}

// Timeout is the bound of one ipamd call.
func (c *NetConf) Timeout() time.Duration {
	if c.TimeoutSeconds == 0 {
		return DefaultTimeout
	}
	return time.Duration(c.TimeoutSeconds) * time.Second
}

// ParseConfig decodes and validates stdin. Its errors are *types.Error with code 6 (not JSON) or
// 7 (a field is wrong), saying which field and what to write instead.
func ParseConfig(stdin []byte) (*NetConf, error) {
	conf := &NetConf{}
	dec := json.NewDecoder(bytes.NewReader(stdin))
	if err := dec.Decode(conf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure,
			fmt.Sprintf("network config is not valid JSON: %v", err), "fix the conflist the runtime passes on stdin")
	}
	if dec.More() {
		return nil, types.NewError(types.ErrDecodingFailure, "network config has data after its JSON object", "")
	}
	if err := conf.validate(); err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	conf.applyDefaults()
	if conf.RawPrevResult != nil {
		if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
			return nil, types.NewError(types.ErrDecodingFailure,
				fmt.Sprintf("prevResult of network %q cannot be read: %v", conf.Name, err), "")
		}
	}
	return conf, nil
}

func (c *NetConf) validate() error {
	switch {
	case c.Name == "":
		return fmt.Errorf(`network config has no "name"; give the network a name`)
	case c.Type != PluginType:
		return fmt.Errorf(`network config "type" is %q; flatnet's is %q`, c.Type, PluginType)
	case c.CNIVersion == "":
		return fmt.Errorf(`network config has no "cniVersion"; flatnet speaks %s`, strings.Join(supportedVersions, ", "))
	case c.MTU != 0 && (c.MTU < minMTU || c.MTU > maxMTU):
		return fmt.Errorf(`"mtu" %d is out of range; use %d..%d, or leave it out to take ipamd's`, c.MTU, minMTU, maxMTU)
	case c.TimeoutSeconds < 0 || c.TimeoutSeconds > maxTimeoutSeconds:
		return fmt.Errorf(`"timeoutSeconds" %d is out of range; use 1..%d, or leave it out for %s`,
			c.TimeoutSeconds, maxTimeoutSeconds, DefaultTimeout)
	}
	for field, p := range map[string]string{"ipamdSocket": c.IpamdSocket, "spoolDir": c.SpoolDir, "logFile": c.LogFile} {
		if p != "" && !filepath.IsAbs(p) {
			return fmt.Errorf("%q %q is not an absolute path", field, p)
		}
	}
	if len(c.Name) > maxNetworkName {
		return fmt.Errorf(`network "name" is %d characters long; at most %d`, len(c.Name), maxNetworkName)
	}
	return nil
}

func (c *NetConf) applyDefaults() {
	if c.IpamdSocket == "" {
		c.IpamdSocket = wire.DefaultSocket
	}
	if c.SpoolDir == "" {
		c.SpoolDir = wire.DefaultSpoolDir
	}
}

// validAttachments is the union of the spec's and the legacy GC lists.
func (c *NetConf) validAttachments() []types.GCAttachment {
	seen := map[types.GCAttachment]bool{}
	var out []types.GCAttachment
	for _, a := range append(append([]types.GCAttachment{}, c.ValidAttachments...), c.LegacyAttachments...) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// podArgs is what flatnet reads of CNI_ARGS. IgnoreUnknown is honoured as the spec says:
// runtimes that send other keys also send IgnoreUnknown=1.
type podArgs struct {
	types.CommonArgs
	K8S_POD_NAMESPACE          types.UnmarshallableString //nolint:revive // CNI_ARGS key names are fixed
	K8S_POD_NAME               types.UnmarshallableString //nolint:revive // CNI_ARGS key names are fixed
	K8S_POD_INFRA_CONTAINER_ID types.UnmarshallableString //nolint:revive // CNI_ARGS key names are fixed
	K8S_POD_UID                types.UnmarshallableString //nolint:revive // CNI_ARGS key names are fixed
}

// parsePodRef reads the pod's namespace and name from CNI_ARGS; code 4 when CNI_ARGS is malformed.
func parsePodRef(args string) (wire.PodRef, error) {
	var pa podArgs
	if err := types.LoadArgs(args, &pa); err != nil {
		return wire.PodRef{}, types.NewError(types.ErrInvalidEnvironmentVariables,
			fmt.Sprintf("CNI_ARGS %q cannot be read: %v", args, err),
			"CNI_ARGS is KEY=VALUE pairs separated by ';', with IgnoreUnknown=1 to pass other keys")
	}
	return wire.PodRef{Namespace: string(pa.K8S_POD_NAMESPACE), Name: string(pa.K8S_POD_NAME), UID: string(pa.K8S_POD_UID)}, nil
}

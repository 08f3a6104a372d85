package cni_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/cni"
	"github.com/flatnet/flatnet/ipamd/wire"
)

func TestParseConfig(t *testing.T) {
	for name, tc := range map[string]struct {
		in   string
		code uint // 0: valid
		want func(*cni.NetConf) string
	}{
		"defaults": {in: `{"cniVersion":"1.1.0","name":"n","type":"flatnet"}`, want: func(c *cni.NetConf) string {
			return cmp.Diff([]any{wire.DefaultSocket, wire.DefaultSpoolDir, cni.DefaultTimeout}, []any{c.IpamdSocket, c.SpoolDir, c.Timeout()})
		}},
		"fields": {in: `{"cniVersion":"1.0.0","name":"n","type":"flatnet","ipamdSocket":"/s","spoolDir":"/d","mtu":1400,"logFile":"/l","timeoutSeconds":3}`,
			want: func(c *cni.NetConf) string {
				return cmp.Diff([]any{"/s", "/d", 1400, "/l", 3 * time.Second}, []any{c.IpamdSocket, c.SpoolDir, c.MTU, c.LogFile, c.Timeout()})
			}},
		"prevResult": {in: `{"cniVersion":"1.0.0","name":"n","type":"flatnet","prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.5/32"}]}}`,
			want: func(c *cni.NetConf) string {
				if c.PrevResult == nil {
					return "prevResult not parsed"
				}
				return ""
			}},
		"not JSON":          {in: `{`, code: types.ErrDecodingFailure},
		"trailing":          {in: `{"cniVersion":"1.1.0","name":"n","type":"flatnet"}x`, code: types.ErrDecodingFailure},
		"bad prevResult":    {in: `{"cniVersion":"1.0.0","name":"n","type":"flatnet","prevResult":{"cniVersion":"1.0.0","ips":"x"}}`, code: types.ErrDecodingFailure},
		"no name":           {in: `{"cniVersion":"1.1.0","type":"flatnet"}`, code: types.ErrInvalidNetworkConfig},
		"long name":         {in: `{"cniVersion":"1.1.0","type":"flatnet","name":"` + strings.Repeat("n", 129) + `"}`, code: types.ErrInvalidNetworkConfig},
		"other type":        {in: `{"cniVersion":"1.1.0","name":"n","type":"bridge"}`, code: types.ErrInvalidNetworkConfig},
		"no version":        {in: `{"name":"n","type":"flatnet"}`, code: types.ErrInvalidNetworkConfig},
		"tiny mtu":          {in: `{"cniVersion":"1.1.0","name":"n","type":"flatnet","mtu":10}`, code: types.ErrInvalidNetworkConfig},
		"huge timeout":      {in: `{"cniVersion":"1.1.0","name":"n","type":"flatnet","timeoutSeconds":100000}`, code: types.ErrInvalidNetworkConfig},
		"relative log file": {in: `{"cniVersion":"1.1.0","name":"n","type":"flatnet","logFile":"x.log"}`, code: types.ErrInvalidNetworkConfig},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := cni.ParseConfig([]byte(tc.in))
			if tc.code != 0 {
				var te *types.Error
				if !errors.As(err, &te) || te.Code != tc.code || te.Msg == "" {
					t.Fatalf("got %v, want code %d", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := tc.want(c); d != "" {
				t.Fatal(d)
			}
		})
	}
}

func TestHostVethName(t *testing.T) {
	o := wire.Owner{Network: "flatnet", ContainerID: "abc", IfName: "eth0"}
	name := cni.HostVethName(o)
	if len(name) != 14 || !strings.HasPrefix(name, "fln") || cni.HostVethName(o) != name {
		t.Fatalf("HostVethName = %q: want fln + 11 hex, stable", name)
	}
	seen := map[string]bool{name: true}
	for _, other := range []wire.Owner{{Network: "flatnet2", ContainerID: "abc", IfName: "eth0"},
		{Network: "flatnet", ContainerID: "abd", IfName: "eth0"}, {Network: "flatnet", ContainerID: "abc", IfName: "eth1"},
		{Network: "flatne", ContainerID: "tabc", IfName: "eth0"}} {
		if n := cni.HostVethName(other); seen[n] {
			t.Fatalf("%+v collides on %s", other, n)
		} else {
			seen[n] = true
		}
	}
}

// FuzzParseConfig: any input either parses into a config the plugin can use or is refused with
// code 6 or 7 and a message; it never panics.
func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		`{"cniVersion":"1.1.0","name":"flatnet","type":"flatnet"}`,
		`{"cniVersion":"1.0.0","name":"n","type":"flatnet","ipamdSocket":"/run/x.sock","spoolDir":"/s","mtu":9001,"logFile":"/l","timeoutSeconds":5}`,
		`{"cniVersion":"1.1.0","name":"n","type":"flatnet","cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}],"cni.dev/attachments":[{"containerID":"b","ifname":"eth0"}]}`,
		`{"cniVersion":"0.4.0","name":"n","type":"flatnet","prevResult":{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"version":"4","address":"10.0.0.5/32","interface":0}]}}`,
		`{"cniVersion":"1.1.0","name":"n","type":"flatnet","mtu":-1}`,
		`{"cniVersion":"1.1.0","name":"n","type":"flatnet","dns":{"nameservers":["10.0.0.2"]}}`,
		`{`, `null`, `[]`, `{"name":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := cni.ParseConfig(in)
		if err != nil {
			var te *types.Error
			if !errors.As(err, &te) || (te.Code != types.ErrDecodingFailure && te.Code != types.ErrInvalidNetworkConfig) || te.Msg == "" {
				t.Fatalf("error %#v is not a CNI error with code 6 or 7 and a message", err)
			}
			return
		}
		if c.Name == "" || c.Type != cni.PluginType || c.CNIVersion == "" || !filepath.IsAbs(c.IpamdSocket) ||
			!filepath.IsAbs(c.SpoolDir) || c.Timeout() <= 0 || c.MTU < 0 {
			t.Fatalf("accepted an unusable config %+v from %q", c, in)
		}
	})
}

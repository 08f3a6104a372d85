package cni_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
)

// Acceptance 4: bad input gets the right CNI error code on stdout (and nothing else there), and
// changes nothing: ipamd is not asked for an address, no link appears. The binary is executed
// directly, because libcni would refuse most of these inputs before the plugin ran.
func TestBadInput(t *testing.T) {
	n := newNode(t, "10.0.8.10")
	p := n.newPod(t, "pod-a")
	good := map[string]any{"cniVersion": "1.1.0", "name": "flatnet", "type": "flatnet", "ipamdSocket": n.socket, "spoolDir": n.spool}
	with := func(k string, v any) []byte {
		m := map[string]any{}
		for key, val := range good {
			m[key] = val
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return b
	}
	goodConf := with("name", "flatnet")
	for name, tc := range map[string]struct {
		env   map[string]string // overrides of the ADD environment; "" deletes
		stdin []byte
		code  uint
		inMsg string
	}{
		"not JSON":                 {stdin: []byte(`{"cniVersion": "1.1.0", "name": `), code: 6},
		"data after the object":    {stdin: append(append([]byte{}, goodConf...), []byte(` {"x":1}`)...), code: 6},
		"empty stdin":              {stdin: []byte{}, code: 6},
		"no name":                  {stdin: with("name", nil), code: 7, inMsg: "name"},
		"wrong type":               {stdin: with("type", "ptp"), code: 7, inMsg: `"type" is "ptp"`},
		"mtu out of range":         {stdin: with("mtu", 70000), code: 7, inMsg: `"mtu"`},
		"mtu not a number":         {stdin: with("mtu", "big"), code: 6},
		"relative socket":          {stdin: with("ipamdSocket", "ipamd.sock"), code: 7, inMsg: "not an absolute path"},
		"negative timeout":         {stdin: with("timeoutSeconds", -1), code: 7, inMsg: "timeoutSeconds"},
		"no cniVersion":            {stdin: with("cniVersion", nil), code: 1},
		"cniVersion 0.2.0":         {stdin: with("cniVersion", "0.2.0"), code: 1},
		"cniVersion 9.9.9":         {stdin: with("cniVersion", "9.9.9"), code: 1},
		"cniVersion not a version": {stdin: with("cniVersion", "one"), code: 1},
		"no CNI_CONTAINERID":       {env: map[string]string{"CNI_CONTAINERID": ""}, code: 4, inMsg: "CNI_CONTAINERID"},
		"no CNI_IFNAME":            {env: map[string]string{"CNI_IFNAME": ""}, code: 4, inMsg: "CNI_IFNAME"},
		"no CNI_NETNS":             {env: map[string]string{"CNI_NETNS": ""}, code: 4, inMsg: "CNI_NETNS"},
		"no CNI_PATH":              {env: map[string]string{"CNI_PATH": ""}, code: 4, inMsg: "CNI_PATH"},
		"unknown CNI_COMMAND":      {env: map[string]string{"CNI_COMMAND": "STEAL"}, code: 4, inMsg: "STEAL"},
		"CNI_CONTAINERID bad":      {env: map[string]string{"CNI_CONTAINERID": "a/b"}, code: 4, inMsg: "containerID"},
		"CNI_IFNAME too long":      {env: map[string]string{"CNI_IFNAME": "averyveryverylongname"}, code: 4, inMsg: "interface name"},
		"CNI_ARGS garbage":         {env: map[string]string{"CNI_ARGS": "garbage"}, code: 4, inMsg: "CNI_ARGS"},
		"CNI_ARGS unknown key":     {env: map[string]string{"CNI_ARGS": "FOO=bar"}, code: 4, inMsg: "CNI_ARGS"},
		"netns does not exist":     {env: map[string]string{"CNI_NETNS": "/var/run/netns/flatnet-no-such-netns"}, code: 4, inMsg: "CNI_NETNS"},
		"netns is not a netns":     {env: map[string]string{"CNI_NETNS": "/proc/self/status"}, code: 4, inMsg: "CNI_NETNS"},
	} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "pod-a", "CNI_NETNS": p.ns.Path(),
				"CNI_IFNAME": "eth0", "CNI_PATH": pluginPath(t), "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=a"}
			for k, v := range tc.env {
				env[k] = v
			}
			stdin := tc.stdin
			if stdin == nil {
				stdin = goodConf
			}
			te := n.execFailing(t, env, stdin)
			if te.Code != tc.code || !strings.Contains(te.Msg+te.Details, tc.inMsg) {
				t.Fatalf("got code %d %q (%s), want code %d mentioning %q", te.Code, te.Msg, te.Details, tc.code, tc.inMsg)
			}
			n.ipamd.set(func(f *fakeIpamd) {
				if f.requests["allocate"] != 0 {
					t.Fatalf("ipamd was asked for an address")
				}
			})
			n.requireClean(t)
			requireNoPodLink(t, p)
		})
	}
}

// execFailing runs the plugin binary in the node netns and wants it to fail with a CNI error
// as the only thing on stdout.
func (n *node) execFailing(t *testing.T, env map[string]string, stdin []byte) *types.Error {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := n.ns.Do(func(ns.NetNS) error {
		cmd := exec.Command(filepath.Join(pluginPath(t), "flatnet"))
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		for k, v := range env {
			if v != "" {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &stdout, &stderr
		return cmd.Run()
	})
	if err == nil {
		t.Fatalf("the plugin succeeded; stdout %s", stdout.Bytes())
	}
	var te types.Error
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if derr := dec.Decode(&te); derr != nil || dec.More() {
		t.Fatalf("stdout is not exactly one CNI error (%v): %q; stderr %q", derr, stdout.String(), stderr.String())
	}
	if te.Msg == "" {
		t.Fatalf("error code %d has no message", te.Code)
	}
	return &te
}

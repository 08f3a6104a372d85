package main

import (
	"io"
	"strings"
	"testing"
)

// TestRemovedFlags: the fakecloud-prefixed names and a token on the command line fail, naming what
// replaces them, in the controller and in its uninstall hook.
func TestRemovedFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--fakecloud-endpoint=http://x"}, "--cloud-endpoint"},
		{[]string{"--fakecloud-token-file=/t"}, "--cloud-token-file"},
		{[]string{"--fakecloud-token=s3cr3t"}, "use --cloud-token-file or $FAKECLOUD_TOKEN"},
		{[]string{"--cloud-token", "s3cr3t"}, "use --cloud-token-file or $FAKECLOUD_TOKEN"},
		{[]string{"uninstall", "--fakecloud-token-file=/t"}, "--cloud-token-file"},
	} {
		root := newRoot()
		root.SetArgs(tc.args)
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), "is removed") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one saying it is removed and naming %s", tc.args, err, tc.want)
		}
	}
}

// TestListenersDefaultToLoopback: metrics and probes are not open on every interface unless the
// operator (the chart) says where.
func TestListenersDefaultToLoopback(t *testing.T) {
	f := newRoot().Flags()
	for _, name := range []string{"metrics-bind-address", "health-probe-bind-address"} {
		if def := f.Lookup(name).DefValue; !strings.HasPrefix(def, "127.0.0.1:") {
			t.Errorf("--%s defaults to %q, want a loopback address", name, def)
		}
	}
}

// TestKubeAPIRateLimit: the API server client is not held to client-go's default of 5
// requests/s (a Gateway pass writes one status per changed route), and a limit that is not
// positive is refused.
func TestKubeAPIRateLimit(t *testing.T) {
	f := newRoot().Flags()
	if qps, _ := f.GetFloat32("kube-api-qps"); qps < 50 {
		t.Errorf("--kube-api-qps defaults to %v, want at least 50", qps)
	}
	if burst, _ := f.GetInt("kube-api-burst"); burst < 100 {
		t.Errorf("--kube-api-burst defaults to %v, want at least 100", burst)
	}
	for _, bad := range []string{"--kube-api-qps=0", "--kube-api-burst=-1"} {
		root := newRoot()
		root.SetArgs([]string{"--cluster-name=c", "--subnet-id=s", "--leader-elect=false", bad})
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "must be positive") {
			t.Errorf("%s: error %v, want one saying the limit must be positive", bad, err)
		}
	}
}

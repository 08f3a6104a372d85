package ipamd_test

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/ipamd"
	"github.com/flatnet/flatnet/ipamd/pool"
)

func parseFlags(t *testing.T, args []string) (ipamd.Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("ipamd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	config := ipamd.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return ipamd.Config{}, err
	}
	return config()
}

// permutations calls fn with every order of args.
func permutations(args []string, fn func([]string)) {
	var rec func(int)
	rec = func(k int) {
		if k == len(args) {
			fn(append([]string(nil), args...))
			return
		}
		for i := k; i < len(args); i++ {
			args[k], args[i] = args[i], args[k]
			rec(k + 1)
			args[k], args[i] = args[i], args[k]
		}
	}
	rec(0)
}

// TestFlagsAnyOrder: every order of a set of flags gives the same Config. --mode used to reset
// the pool settings given before it (warm-low, warm-high back to the mode's defaults).
func TestFlagsAnyOrder(t *testing.T) {
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("tok-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, set := range [][]string{
		{"--mode=prefix", "--warm-low=5", "--warm-high=20", "--max-batch=7", "--idle-release=2m", "--cloud-token-file=" + token},
		{"--prefix-mode", "--warm-low=9", "--max-addresses=40", "--metrics-bind-address=10.0.0.1:9", "--cooldown=1s"},
		{"--mode=ip", "--warm-high=4", "--warm-low=2", "--max-interfaces=2", "--cloud-endpoint=http://x"},
	} {
		want, err := parseFlags(t, set)
		if err != nil {
			t.Fatalf("%v: %v", set, err)
		}
		first := slices.Clone(set)
		orders := 0
		permutations(set, func(args []string) {
			orders++
			got, err := parseFlags(t, args)
			if err != nil {
				t.Fatalf("%v: %v", args, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%v gives another config than %v (-first +this):\n%s", args, first, diff)
			}
		})
		t.Logf("%d orders of %v agree", orders, first)
	}
	// What the first set says, in any order.
	got, _ := parseFlags(t, []string{"--warm-low=5", "--warm-high=20", "--mode=prefix", "--cloud-token-file=" + token})
	if got.Pool.Mode != pool.ModePrefix || got.Pool.WarmLow != 5 || got.Pool.WarmHigh != 20 || got.CloudToken != "tok-1" {
		t.Errorf("--warm-low=5 --warm-high=20 --mode=prefix gave pool %+v, token %q", got.Pool, got.CloudToken)
	}
	// The mode's defaults where the command line says nothing.
	got, _ = parseFlags(t, []string{"--mode=prefix"})
	if want := pool.DefaultConfig(pool.ModePrefix); got.Pool != want {
		t.Errorf("--mode=prefix gave pool %+v, want the prefix defaults %+v", got.Pool, want)
	}
}

// TestFlagsRemoved: a secret on the command line (visible in /proc/<pid>/cmdline) and the old
// name of the metrics flag fail, naming what replaces them; contradicting modes fail.
func TestFlagsRemoved(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--cloud-token=secret"}, []string{"--cloud-token is removed", "--cloud-token-file", ipamd.EnvCloudToken}},
		{[]string{"--cloud-token", "secret"}, []string{"--cloud-token is removed"}},
		{[]string{"--metrics-addr=:1"}, []string{"--metrics-addr is removed", "--metrics-bind-address"}},
		{[]string{"--prefix-mode", "--mode=ip"}, []string{"--prefix-mode and --mode=ip disagree"}},
		{[]string{"--cloud-token-file=/nonexistent/token"}, []string{"read the token file"}},
	} {
		_, err := parseFlags(t, tc.args)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %v, want one saying %q", tc.args, err, w)
			}
		}
	}
}

// TestFlagDefaults: metrics listen on loopback unless told otherwise; the token comes from the
// environment when no file is given.
func TestFlagDefaults(t *testing.T) {
	t.Setenv(ipamd.EnvCloudToken, "from-env")
	got, err := parseFlags(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.MetricsAddr != "127.0.0.1:61678" || got.CloudToken != "from-env" {
		t.Errorf("defaults: metrics %q, token %q; want 127.0.0.1:61678 and the environment's", got.MetricsAddr, got.CloudToken)
	}
}

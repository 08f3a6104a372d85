package lab

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Acceptance 1 and 3 of the lab issue: the demo's proofs pass twice in a row, leave nothing
// behind, and never touch the root namespace.
func TestDemoTwiceLeavesNothing(t *testing.T) {
	guardRootNet(t)
	cfg := testConfig(t, "fld-", 7481)
	cfg.Kubernetes, cfg.K8sBinDir, cfg.APIServerListen = true, k8sBinDir(t), freeAddr(t, 6446)
	for round := 1; round <= 2; round++ {
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		err := demoWith(ctx, cfg, &out)
		cancel()
		t.Logf("demo round %d output:\n%s", round, out.String())
		if err != nil {
			t.Fatalf("demo round %d: %v", round, err)
		}
		for _, want := range []string{"saw", "seen as", "no answer (dropped", "interfaces (had 1)",
			"3 nodes Ready", "ready endpoints 10.0.", "assigned by the node's ipamd", "addresses are free or cooling down"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("round %d: the demo did not show %q", round, want)
			}
		}
		if left := leftovers(t, cfg.Prefix, cfg.Dir); len(left) > 0 {
			t.Fatalf("round %d left behind:\n%s", round, strings.Join(left, "\n"))
		}
	}
}

func demoWith(ctx context.Context, cfg Config, out *bytes.Buffer) error {
	return demoRun(ctx, cfg, DemoOptions{Dir: cfg.Dir, BinDir: cfg.BinDir, Out: out, Kubernetes: cfg.Kubernetes})
}

// Acceptance 3 of issue 17: the demo's proofs pass with --cloud aws-api, ipamd and lbcontroller
// reaching fakecloud through the AWS driver (aws-sdk-go-v2) on its EC2 and ELBv2 endpoint,
// with SigV4 credentials: the nodes' instance roles from the metadata service, the
// administrator's keys from the cloud Secret.
func TestDemoAWSAPI(t *testing.T) {
	guardRootNet(t)
	cfg := testConfig(t, "fla-", 7482)
	cfg.Kubernetes, cfg.K8sBinDir, cfg.APIServerListen = true, k8sBinDir(t), freeAddr(t, 6447)
	cfg.Cloud = CloudAWSAPI
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	// Kept up so that fakecloud's request log can be read, then taken down.
	err := demoRun(ctx, cfg, DemoOptions{Dir: cfg.Dir, BinDir: cfg.BinDir, Out: &out, Kubernetes: true, Cloud: CloudAWSAPI, Keep: true})
	t.Logf("demo output:\n%s", out.String())
	log, _ := os.ReadFile(filepath.Join(cfg.Dir, "fakecloud.log"))
	if derr := Down(cfg.Dir, cfg.Prefix, &out); derr != nil {
		t.Errorf("down: %v", derr)
	}
	if err != nil {
		t.Fatalf("demo with --cloud aws-api: %v", err)
	}
	for _, want := range []string{"saw", "seen as", "no answer (dropped", "interfaces (had 1)",
		"3 nodes Ready", "ready endpoints 10.0.", "assigned by the node's ipamd", "addresses are free or cooling down",
		// The GRPCRoute through ELBv2's rules (its gRPC content-type condition as three values).
		"GRPCRoute: ",
		// The Gateway's TCP listener on its companion network load balancer.
		"TCPRoute: ", "(the companion network load balancer)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo did not show %q", want)
		}
	}
	// The cloud's changes came through the AWS protocols: ipamd's interface and address calls
	// over EC2 with its instance's credentials, lbcontroller's over ELBv2, and none of them
	// through fakecloud's own API.
	var ec2, elbv2, json int
	for _, line := range strings.Split(string(log), "\n") {
		instanceWrite := logHas(line, "principal", "i-") && (logHas(line, "action", "AssignPrivateIpAddresses") ||
			logHas(line, "action", "CreateNetworkInterface") || logHas(line, "action", "UnassignPrivateIpAddresses"))
		switch {
		case logHas(line, "action", "CreateLoadBalancerToken"):
			// the lab's own set-up: the admin creates lbcontroller's load-balancer token
		case instanceWrite && logHas(line, "protocol", "ec2"):
			ec2++
		case instanceWrite:
			json++
		case logHas(line, "action", "CreateLoadBalancer") && logHas(line, "protocol", "elbv2"):
			elbv2++
		case logHas(line, "action", "CreateLoadBalancer"):
			json++
		}
	}
	t.Logf("fakecloud's request log: %d EC2 writes by instances, %d ELBv2 load balancer creates, %d writes through the JSON API", ec2, elbv2, json)
	if ec2 == 0 || elbv2 == 0 || json != 0 {
		t.Errorf("want the cloud's changes through EC2 (ipamd) and ELBv2 (lbcontroller) only")
	}
	if left := leftovers(t, cfg.Prefix, cfg.Dir); len(left) > 0 {
		t.Fatalf("left behind:\n%s", strings.Join(left, "\n"))
	}
}

// logHas reports whether a log line (text or JSON slog) has key with a value starting with val.
func logHas(line, key, val string) bool {
	return strings.Contains(line, key+"="+val) || strings.Contains(line, `"`+key+`":"`+val)
}

package aws

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestMain runs the package's tests, which drive both components' drivers through everything
// they do against fakecloud, then checks that each component's IAM policy allows every
// operation its driver called: a new call the policy misses fails the package.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		for _, component := range []string{"ipamd", "lbcontroller"} {
			if err := policyCovers(component, calledOps[component].names()); err != nil {
				fmt.Fprintln(os.Stderr, "FAIL: IAM policy:", err)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// policyCovers checks that the component's policy allows each operation (EC2's, ELBv2's or
// ACM's).
func policyCovers(component string, ops []string) error {
	allowed, err := policyActions(component)
	if err != nil {
		return err
	}
	for _, op := range ops {
		if !slices.Contains(allowed, "ec2:"+op) && !slices.Contains(allowed, "elasticloadbalancing:"+op) && !slices.Contains(allowed, "acm:"+op) {
			return fmt.Errorf("%s's driver calls %s, which its policy (providers/aws/iam/%s.json) does not allow", component, op, component)
		}
	}
	return nil
}

// policyActions are the actions a policy document allows.
func policyActions(component string) ([]string, error) {
	b, err := Policy(component)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Version   string
		Statement []struct {
			Effect string
			Action json.RawMessage
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s's policy is not JSON: %w", component, err)
	}
	var out []string
	for _, st := range doc.Statement {
		if st.Effect != "Allow" {
			continue
		}
		var one string
		if json.Unmarshal(st.Action, &one) == nil {
			out = append(out, one)
			continue
		}
		var many []string
		if err := json.Unmarshal(st.Action, &many); err != nil {
			return nil, fmt.Errorf("%s's policy has an Action that is neither a string nor a list: %w", component, err)
		}
		out = append(out, many...)
	}
	return out, nil
}

// TestPolicies: both documents parse, and a call outside them is caught.
func TestPolicies(t *testing.T) {
	for _, c := range []string{"ipamd", "lbcontroller"} {
		acts, err := policyActions(c)
		if err != nil || len(acts) == 0 {
			t.Fatalf("%s: %v %v", c, acts, err)
		}
	}
	if err := policyCovers("ipamd", []string{"DescribeInstances", "TerminateInstances"}); err == nil {
		t.Fatal("ipamd's policy allows TerminateInstances")
	}
	if err := policyCovers("lbcontroller", []string{"CreateNetworkInterface"}); err == nil {
		t.Fatal("lbcontroller's policy allows CreateNetworkInterface")
	}
	if _, err := Policy("kubelet"); err == nil {
		t.Fatal("a policy for an unknown component")
	}
}

// TestPolicyDocs: docs/providers.md shows each policy exactly as the driver's package has it.
func TestPolicyDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/providers.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"ipamd", "lbcontroller"} {
		b, err := Policy(c)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(doc), "```json\n"+string(b)+"```") {
			t.Errorf("docs/providers.md does not show providers/aws/iam/%s.json as it is", c)
		}
	}
}

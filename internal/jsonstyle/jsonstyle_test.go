package jsonstyle

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPascalCase(t *testing.T) {
	for key, ok := range map[string]bool{
		"VpcId": true, "PrivateIpAddress": true, "Ipv4Prefixes": true, "LoadBalancerId": true, "Error": true,
		"VpcID": false, "vpcId": false, "Vpc_Id": false, "IPAddress": false, "": false,
	} {
		if got := PascalCase.Problem(key) == ""; got != ok {
			t.Errorf("PascalCase.Problem(%q) = %q; want ok=%v", key, PascalCase.Problem(key), ok)
		}
	}
}

func TestLowerCamel(t *testing.T) {
	for key, want := range map[string]string{
		"free": "", "recentDemand": "", "subnetID": "", "containerID": "", "vpcCIDRs": "", "podIPs": "",
		"ipv4PerInterface": "", "cniConfDir": "", "mtu": "", "snatExclusions": "", "idleRelease": "",
		"maxIdle": "", "identity": "", "machines": "", "apiserverPID": "", "uid": "",
		"Free":          "want lowerCamel",
		"recent_demand": "want lowerCamel",
		"instanceId":    "initialism ID in capitals (instanceID)",
		"subnetIds":     "initialism ID in capitals (subnetIDs)",
		"metadataUrl":   "initialism URL in capitals (metadataURL)",
		"externalSnat":  "initialism SNAT in capitals (externalSNAT)",
		"vpcCidrs":      "initialism CIDR in capitals (vpcCIDRs)",
		"maxIpv4":       "IPv4/IPv6 written so (maxIPv4)",
	} {
		got := LowerCamel.Problem(key)
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("LowerCamel.Problem(%q) = %q; want %q", key, got, want)
		}
	}
}

type inner struct {
	Good string `json:"good"`
	Bad  string
}

type embedded struct {
	Promoted int `json:"promoted"`
	Wrong    int `json:"Wrong"`
}

type outer struct {
	embedded
	Name     string            `json:"name"`
	Inner    *inner            `json:"inner"`
	List     []inner           `json:"list"` // inner is reported once
	ByName   map[string]inner  `json:"byName"`
	Inline   struct{ X int }   `json:"inline"`
	When     time.Time         `json:"when"`
	Addr     netip.Addr        `json:"addr"`
	Skipped  string            `json:"-"`
	Hyphen   string            `json:"hyphen-key"`
	OmitOnly string            `json:",omitempty"`
	hidden   string            //nolint:unused // unexported: never encoded
	Labels   map[string]string `json:"labels"`
}

// TestFields: every exported field without a key or with a key of the wrong style is named by
// type and field, through pointers, slices, maps, embedded and anonymous structs, once per type;
// self-encoding types are leaves.
func TestFields(t *testing.T) {
	problems, checked := LowerCamel.Fields(reflect.TypeFor[outer]())
	want := []string{
		`jsonstyle.embedded.Wrong has the json key "Wrong"`,
		`jsonstyle.inner.Bad has no json key`,
		`jsonstyle.outer.Inline.X has no json key`,
		`jsonstyle.outer.Hyphen has the json key "hyphen-key"`,
		`jsonstyle.outer.OmitOnly has no json key`,
	}
	if len(problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(problems), len(want), strings.Join(problems, "\n"))
	}
	for _, w := range want {
		found := false
		for _, p := range problems {
			found = found || strings.HasPrefix(p, w)
		}
		if !found {
			t.Errorf("no problem %q in:\n%s", w, strings.Join(problems, "\n"))
		}
	}
	// promoted, Wrong, name, inner, list, byName, inline, when, addr, Hyphen, OmitOnly, labels,
	// inner's two and the anonymous struct's one.
	if checked != 15 {
		t.Errorf("checked %d fields; want 15", checked)
	}
}

type selfEncoding struct{ time.Time }

type embedsSelfEncoding struct {
	selfEncoding
	Name string `json:"name"`
}

func TestEmbeddedMarshalerIsFlagged(t *testing.T) {
	problems, _ := LowerCamel.Fields(reflect.TypeFor[embedsSelfEncoding]())
	if len(problems) != 1 || !strings.Contains(problems[0], "embeds jsonstyle.selfEncoding") {
		t.Errorf("problems %q; want the embedded self-encoding type named", problems)
	}
}

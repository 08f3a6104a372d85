package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/client"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// fixture is a running fakecloud with a VPC, a subnet and two m5.large instances.
type fixture struct {
	*servertest.Env
	vpc       api.Vpc
	subnet    api.Subnet
	instances []api.Instance
}

func newFixture(t testing.TB, o servertest.Options) *fixture {
	t.Helper()
	env := servertest.Start(t, o)
	n := newFixtureAt(t, env.URL)
	return &fixture{Env: env, vpc: n.vpc, subnet: n.subnet, instances: n.instances}
}

// network is the fixture's resources, built through the API at url.
type network struct {
	admin     *client.Client
	vpc       api.Vpc
	subnet    api.Subnet
	instances []api.Instance
}

func newFixtureAt(t testing.TB, url string) *network {
	t.Helper()
	c := client.New(url, servertest.AdminToken)
	ctx := context.Background()
	vpc, err := c.CreateVpc(ctx, &api.CreateVpcRequest{CidrBlock: "10.0.0.0/16"})
	if err != nil {
		t.Fatalf("CreateVpc: %v", err)
	}
	sn, err := c.CreateSubnet(ctx, &api.CreateSubnetRequest{VpcID: vpc.Vpc.VpcID, CidrBlock: "10.0.0.0/24"})
	if err != nil {
		t.Fatalf("CreateSubnet: %v", err)
	}
	run, err := c.RunInstances(ctx, &api.RunInstancesRequest{SubnetID: sn.Subnet.SubnetID, InstanceType: "m5.large", Count: 2})
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	return &network{admin: c, vpc: vpc.Vpc, subnet: sn.Subnet, instances: run.Instances}
}

// primaryENI is the ID of instance i's primary interface.
func (f *fixture) primaryENI(i int) string {
	return f.instances[i].NetworkInterfaces[0].NetworkInterfaceID
}

func (f *fixture) snapshot(t testing.TB) api.Snapshot {
	t.Helper()
	s, err := f.Admin.GetSnapshot(context.Background(), nil)
	if err != nil {
		t.Fatalf("GetSnapshot: %v", err)
	}
	return s.Snapshot
}

// answer is a raw HTTP answer.
type answer struct {
	status    int
	requestID string
	body      []byte
}

// errorOf decodes an error answer.
func (a answer) errorOf(t testing.TB) api.Error {
	t.Helper()
	var e api.ErrorResponse
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("error answer %q is not an ErrorResponse: %v", a.body, err)
	}
	return e.Error
}

// post sends body as is to /api/<action>; an empty token sends no Authorization header.
func post(t testing.TB, url, token, action string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/api/"+action, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set(api.HeaderAuthorization, "Bearer "+token)
	}
	return send(t, req)
}

func send(t testing.TB, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, requestID: resp.Header.Get(api.HeaderRequestID), body: raw}
}

// mustUnchanged fails when the state moved between two snapshots.
func mustUnchanged(t testing.TB, before, after api.Snapshot) {
	t.Helper()
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("state changed (-before +after):\n%s", diff)
	}
}

// clock is a settable clock for throttling tests.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) Advance(d time.Duration) { c.now = c.now.Add(d) }

func (f *fixture) listFaults(t testing.TB) []api.Fault {
	t.Helper()
	l, err := f.Admin.ListFaults(context.Background(), nil)
	if err != nil {
		t.Fatalf("ListFaults: %v", err)
	}
	return l.Faults
}

// scrape returns the /metrics page.
func scrape(t testing.TB, url string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	a := send(t, req)
	if a.status != http.StatusOK {
		t.Fatalf("/metrics: %d", a.status)
	}
	return string(a.body)
}

func containsLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

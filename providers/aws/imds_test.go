package aws

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/fabric/metadata"
)

// TestCredentialsFromMetadata: with nothing in the environment, the driver's configuration
// chain finds the instance role's credentials in fakecloud's metadata service
// (IMDSv2), as on EC2 (the region is given: fakecloud's metadata has no
// instance identity document, where the SDK reads it), and the instance's ipamd driver works with them. The metadata service
// runs in-process: it tells instances apart by their source address, which the test sets to
// the instance's.
func TestCredentialsFromMetadata(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "m5.large", 1)
	inst := w.instances[0]
	snap, err := w.Admin.GetSnapshot(ctx, &api.GetSnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	md := metadata.NewServer(w.URL)
	md.Update(&snap.Snapshot)
	h := md.Handler(inst.VpcID)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		r.RemoteAddr = net.JoinHostPort(inst.PrivateIPAddress, "40000")
		h.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "false")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", srv.URL)
	d, err := NewIPAM(ctx, Config{Region: testRegion, Endpoint: w.URL, Observe: calledOps["ipamd"].observe})
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.DescribeInstance(ctx, inst.InstanceID)
	if err != nil {
		t.Fatalf("describe with the metadata service's credentials: %v", err)
	}
	if got.ID != inst.InstanceID || got.MaxInterfaces != 3 {
		t.Fatalf("described %+v", got)
	}
	cfg, err := load(ctx, Config{Region: testRegion, Endpoint: w.URL})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != "EC2RoleProvider" || c.SessionToken == "" || c.AccessKeyID[:4] != "ASIA" {
		t.Fatalf("credentials from %q (%s…); want the instance role's temporary credentials", c.Source, c.AccessKeyID[:4])
	}

}

package ipamd

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestDiscoverPerCloud: on fakecloud ipamd reads its instance ID, the endpoint and its token from
// the metadata service; with another cloud's driver only the instance ID, since fakecloud's
// documents do not exist there (the AWS driver finds endpoint and credentials in its own chain).
func TestDiscoverPerCloud(t *testing.T) {
	docs := map[string]string{"/latest/meta-data/instance-id": "i-0123456789abcdef0"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
			_, _ = w.Write([]byte("session"))
			return
		}
		body, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	d := &Daemon{cfg: Config{Cloud: "aws", MetadataURL: srv.URL}}
	if err := d.discover(ctx); err != nil {
		t.Fatalf("aws: %v", err)
	}
	if d.cfg.InstanceID != "i-0123456789abcdef0" || d.cfg.CloudEndpoint != "" || d.cfg.CloudToken != "" {
		t.Fatalf("aws: discovered %+v", d.cfg)
	}
	d = &Daemon{cfg: Config{Cloud: "fakecloud", MetadataURL: srv.URL}}
	if err := d.discover(ctx); err == nil {
		t.Fatal("fakecloud without fakecloud/endpoint in the metadata: no error")
	}
	docs["/latest/meta-data/fakecloud/endpoint"], docs["/latest/meta-data/fakecloud/token"] = "http://169.254.169.253:7474", "tok"
	if err := d.discover(ctx); err != nil {
		t.Fatalf("fakecloud: %v", err)
	}
	if d.cfg.CloudEndpoint != "http://169.254.169.253:7474" || d.cfg.CloudToken != "tok" {
		t.Fatalf("fakecloud: discovered %+v", d.cfg)
	}
}

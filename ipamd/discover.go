package ipamd

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// discover fills the instance ID, cloud endpoint and token the flags left empty from the
// metadata service, over an IMDSv2 session (the cloud token is served only within one, and the
// session reply's hop limit keeps it from pods). fakecloud's endpoint and token are fakecloud's
// documents: another cloud's driver finds its endpoint and credentials in its own chain (AWS:
// AWS_ENDPOINT_URL, the instance role), so only the instance ID is read for it.
func (d *Daemon) discover(ctx context.Context) error {
	fakecloud := d.cfg.Cloud == "" || d.cfg.Cloud == "fakecloud"
	if d.cfg.InstanceID != "" && (!fakecloud || d.cfg.CloudEndpoint != "" && d.cfg.CloudToken != "") {
		return nil
	}
	session, err := imdsSession(ctx, d.cfg.MetadataURL)
	if err != nil {
		return fmt.Errorf("open a metadata session: %w (outside a node, pass --instance-id, --cloud-endpoint and --cloud-token-file or $FLATNET_CLOUD_TOKEN)", err)
	}
	for _, f := range []struct {
		dst  *string
		path string
	}{
		{&d.cfg.InstanceID, "instance-id"},
		{&d.cfg.CloudEndpoint, "fakecloud/endpoint"},
		{&d.cfg.CloudToken, "fakecloud/token"},
	} {
		if *f.dst != "" || !fakecloud && f.path != "instance-id" {
			continue
		}
		v, err := metadata(ctx, d.cfg.MetadataURL, session, f.path)
		if err != nil {
			return fmt.Errorf("find this node's %s: %w (outside a node, pass --instance-id, --cloud-endpoint and --cloud-token-file or $FLATNET_CLOUD_TOKEN)", f.path, err)
		}
		*f.dst = v
	}
	return nil
}

// imdsSession asks the metadata service for an IMDSv2 session token.
func imdsSession(ctx context.Context, base string) (string, error) {
	return metadataCall(ctx, http.MethodPut, strings.TrimRight(base, "/")+"/latest/api/token",
		map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
}

// metadata reads one document of the metadata tree within a session.
func metadata(ctx context.Context, base, session, path string) (string, error) {
	return metadataCall(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/latest/meta-data/"+path,
		map[string]string{"X-aws-ec2-metadata-token": session})
}

// metadataCall makes one metadata request, retrying briefly (the service may lag at boot).
func metadataCall(ctx context.Context, method, url string, headers map[string]string) (string, error) {
	hc := &http.Client{Timeout: 2 * time.Second}
	var last error
	for attempt := range 5 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		req, err := http.NewRequestWithContext(ctx, method, url, nil)
		if err != nil {
			return "", err
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			last = err
			continue
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err != nil {
			last = err
			continue
		}
		if resp.StatusCode != http.StatusOK {
			last = fmt.Errorf("%s %s: %s", method, url, resp.Status)
			continue
		}
		return strings.TrimSpace(string(body)), nil
	}
	return "", last
}

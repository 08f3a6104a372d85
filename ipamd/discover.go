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
// metadata service.
func (d *Daemon) discover(ctx context.Context) error {
	for _, f := range []struct {
		dst  *string
		path string
	}{
		{&d.cfg.InstanceID, "instance-id"},
		{&d.cfg.CloudEndpoint, "fakecloud/endpoint"},
		{&d.cfg.CloudToken, "fakecloud/token"},
	} {
		if *f.dst != "" {
			continue
		}
		v, err := metadata(ctx, d.cfg.MetadataURL, f.path)
		if err != nil {
			return fmt.Errorf("find this node's %s: %w (outside a node, pass --instance-id, --cloud-endpoint and --cloud-token)", f.path, err)
		}
		*f.dst = v
	}
	return nil
}

// metadata reads one document of the metadata tree, retrying briefly (it may lag at boot).
func metadata(ctx context.Context, base, path string) (string, error) {
	url := strings.TrimRight(base, "/") + "/latest/meta-data/" + path
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
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return "", err
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
			last = fmt.Errorf("GET %s: %s", url, resp.Status)
			continue
		}
		return strings.TrimSpace(string(body)), nil
	}
	return "", last
}

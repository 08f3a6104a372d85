package fakecloud

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/flatnet/flatnet/fakecloud/client"
	"github.com/flatnet/flatnet/providers"
)

// Name is the driver's --cloud name.
const Name = "fakecloud"

// Driver is the registry entry: both drivers, built from providers.Settings.
var Driver = providers.Driver{
	Name: Name,
	NewIPAM: func(_ context.Context, s providers.Settings) (providers.IPAM, error) {
		return NewIPAM(Config{Settings: s})
	},
	NewLoadBalancing: func(ctx context.Context, s providers.Settings) (providers.LoadBalancing, error) {
		return NewLoadBalancing(ctx, Config{Settings: s})
	},
}

// Config configures either driver: the cloud-neutral settings and what only fakecloud has.
type Config struct {
	providers.Settings
	// Client, when set, is used as it is instead of one built from Endpoint and Credentials
	// (tests hand in a test server's client).
	Client *client.Client
	// WatchWait is how long one change-stream poll of WatchHealth waits (default 25 s;
	// fakecloud caps it at 30 s).
	WatchWait time.Duration
}

// client returns the configured client, or one built from the endpoint and the token (given,
// or read from Credentials.File). hint says how the user passes an endpoint.
func (c Config) client(hint string) (*client.Client, error) {
	if c.Client != nil {
		return c.Client, nil
	}
	if c.Endpoint == "" {
		return nil, fmt.Errorf("no fakecloud endpoint: %s", hint)
	}
	tok := c.Credentials.Token
	if tok == "" && c.Credentials.File != "" {
		b, err := os.ReadFile(c.Credentials.File)
		if err != nil {
			return nil, fmt.Errorf("read the fakecloud token: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	if tok == "" {
		return nil, errors.New("no fakecloud token: flatnet-lbcontroller takes one from --cloud-token-file or $FAKECLOUD_TOKEN; ipamd its instance's from the metadata service (or --cloud-token-file or $FLATNET_CLOUD_TOKEN)")
	}
	return client.New(c.Endpoint, tok), nil
}

func (c Config) observer() providers.Observer {
	if c.Observe == nil {
		return func(string, time.Duration, error) {}
	}
	return c.Observe
}

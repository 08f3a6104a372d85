package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/client"
)

func newLBCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "lb", Short: "Manage load balancers, their listeners and rules"}
	cmd.AddCommand(lbCreateCmd(g), lbListCmd(g), lbDeleteCmd(g), lbSourceRangesCmd(g), lbAccessLogsCmd(g), newListenerCmd(g), newRuleCmd(g))
	return cmd
}

func lbCreateCmd(g *globals) *cobra.Command {
	var subnet, typ, publicIP, privateIP string
	var internal bool
	var tags []string
	c := &cobra.Command{
		Use: "create NAME --subnet SUBNET", Short: "Create a load balancer (internet-facing unless --internal)", Args: cobra.ExactArgs(1),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			t, err := parseTags(tags)
			if err != nil {
				return err
			}
			scheme := api.SchemeInternetFacing
			if internal {
				scheme = api.SchemeInternal
			}
			r, err := c.CreateLoadBalancer(ctx, &api.CreateLoadBalancerRequest{Name: args[0], Scheme: scheme, Type: typ, SubnetID: subnet, Tags: t,
				PublicIPv4Address: publicIP, PrivateIPv4Address: privateIP})
			if err != nil {
				return err
			}
			return g.emit(r, lbTable([]api.LoadBalancer{r.LoadBalancer}))
		}),
	}
	c.Flags().StringVar(&subnet, "subnet", "", "subnet ID (required)")
	c.Flags().BoolVar(&internal, "internal", false, "VIP from the subnet instead of the public pool")
	c.Flags().StringVar(&typ, "type", api.LoadBalancerTypeNetwork, "network (TCP/UDP) or application (HTTP/HTTPS with rules)")
	c.Flags().StringArrayVar(&tags, "tag", nil, "tag KEY=VALUE (repeatable)")
	c.Flags().StringVar(&publicIP, "public-address", "", "the public VIP to take (a free address of the public pool; internet-facing only)")
	c.Flags().StringVar(&privateIP, "private-address", "", "the private address to take (a free address of the subnet)")
	_ = c.MarkFlagRequired("subnet")
	return c
}

func lbListCmd(g *globals) *cobra.Command {
	var tag string
	c := &cobra.Command{
		Use: "list", Short: "List load balancers", Args: cobra.NoArgs,
		RunE: g.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			req := &api.DescribeLoadBalancersRequest{}
			if tag != "" {
				k, v, _ := strings.Cut(tag, "=")
				req.Filters = filter("tag:"+k, v)
			}
			r, err := c.DescribeLoadBalancers(ctx, req)
			if err != nil {
				return err
			}
			return g.emit(r, lbTable(r.LoadBalancers))
		}),
	}
	c.Flags().StringVar(&tag, "tag", "", "only those with tag KEY=VALUE")
	return c
}

func lbDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "delete LB...", Short: "Delete load balancers with their listeners", Args: cobra.MinimumNArgs(1),
		RunE: g.deleteEach(func(ctx context.Context, c *client.Client, id string) (any, error) {
			return c.DeleteLoadBalancer(ctx, &api.DeleteLoadBalancerRequest{LoadBalancerID: id})
		}),
	}
}

func lbSourceRangesCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "source-ranges LB [CIDR...]", Short: "Allow only these source CIDRs (none: allow everyone)", Args: cobra.MinimumNArgs(1),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			r, err := c.ModifyLoadBalancerAttributes(ctx, &api.ModifyLoadBalancerAttributesRequest{LoadBalancerID: args[0],
				Attributes: []api.Attribute{{Key: api.AttributeSourceRanges, Value: strings.Join(args[1:], ",")}}})
			if err != nil {
				return err
			}
			return g.done(r, "%s source ranges: %s", args[0], orDash(r.Attributes[0].Value))
		}),
	}
}

func lbAccessLogsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "access-logs LB on|off", Short: "Write an application load balancer's access log, or stop (see fakecloud serve --fabric-access-log-dir)",
		Args: cobra.ExactArgs(2),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			value, ok := map[string]string{"on": "true", "off": "false"}[args[1]]
			if !ok {
				return fmt.Errorf("access-logs %s %q: say on or off", args[0], args[1])
			}
			r, err := c.ModifyLoadBalancerAttributes(ctx, &api.ModifyLoadBalancerAttributesRequest{LoadBalancerID: args[0],
				Attributes: []api.Attribute{{Key: api.AttributeAccessLogs, Value: value}}})
			if err != nil {
				return err
			}
			return g.done(r, "%s access log: %s", args[0], args[1])
		}),
	}
}

func newListenerCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "listener", Short: "Manage the listeners of a load balancer"}
	var protocol, tg, actions, cert, policy string
	var port int
	var scopes []string
	var mtls mtlsFlags
	create := &cobra.Command{
		Use: "create LB --port N --target-group TG", Short: "Open a port forwarding to a target group (or taking --default-actions)", Args: cobra.ExactArgs(1),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			req := &api.CreateListenerRequest{LoadBalancerID: args[0], Protocol: protocol, Port: port, SSLPolicy: policy, HostnameScopes: scopes}
			var err error
			if req.DefaultActions, req.Certificates, err = listenerFlags(tg, actions, cert); err != nil {
				return err
			}
			if req.MutualAuthentication, err = mtls.authentication(); err != nil {
				return err
			}
			r, err := c.CreateListener(ctx, req)
			if err != nil {
				return err
			}
			return g.emit(r, listenerTable([]api.Listener{r.Listener}))
		}),
	}
	create.Flags().StringVar(&protocol, "protocol", api.ProtocolTCP, "TCP or UDP (network), HTTP or HTTPS (application)")
	create.Flags().IntVar(&port, "port", 0, "port 1-65535 (required)")
	create.Flags().StringVar(&tg, "target-group", "", "target group ID to forward to")
	create.Flags().StringVar(&actions, "default-actions", "", "default actions as JSON (inline or @FILE; application load balancers)")
	create.Flags().StringVar(&cert, "certificate", "", "default certificate ID (HTTPS)")
	create.Flags().StringVar(&policy, "ssl-policy", "", "SSL policy (HTTPS; default "+api.SSLPolicyDefault+")")
	create.Flags().StringSliceVar(&scopes, "hostname-scope", nil, "hostname (exact or *.suffix) served as an authority of its own: a request whose Host falls in another scope than its connection's SNI name gets 421 (HTTPS; repeat or comma-separate)")
	create.Flags().StringVar(&mtls.mode, "mtls", "", "ask clients for a certificate (HTTPS): verify (required, checked against --mtls-ca-file) or passthrough (asked for, not required or checked)")
	create.Flags().StringVar(&mtls.caFile, "mtls-ca-file", "", "PEM file of the CA certificates clients' certificate chains must end at (with --mtls)")
	_ = create.MarkFlagRequired("port")
	create.MarkFlagsOneRequired("target-group", "default-actions")
	create.MarkFlagsMutuallyExclusive("target-group", "default-actions")
	list := &cobra.Command{
		Use: "list LB", Short: "List a load balancer's listeners", Args: cobra.ExactArgs(1),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			r, err := c.DescribeListeners(ctx, &api.DescribeListenersRequest{LoadBalancerID: args[0]})
			if err != nil {
				return err
			}
			return g.emit(r, listenerTable(r.Listeners))
		}),
	}
	del := &cobra.Command{
		Use: "delete LISTENER...", Short: "Delete listeners", Args: cobra.MinimumNArgs(1),
		RunE: g.deleteEach(func(ctx context.Context, c *client.Client, id string) (any, error) {
			return c.DeleteListener(ctx, &api.DeleteListenerRequest{ListenerID: id})
		}),
	}
	cmd.AddCommand(create, list, del, listenerModifyCmd(g), listenerCertsCmd(g))
	return cmd
}

func newTGCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "tg", Short: "Manage target groups, their targets and health checks"}
	cmd.AddCommand(tgCreateCmd(g), tgListCmd(g), tgDeleteCmd(g), tgDelayCmd(g), tgTargetsCmd(g, true), tgTargetsCmd(g, false), tgHealthCmd(g))
	return cmd
}

func tgCreateCmd(g *globals) *cobra.Command {
	var vpc, protocol, version, clientCert string
	var port int
	var hc api.HealthCheck
	var tags []string
	var tv tlsFlags
	c := &cobra.Command{
		Use: "create NAME --vpc VPC --port N", Short: "Create a target group of IP targets", Args: cobra.ExactArgs(1),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			t, err := parseTags(tags)
			if err != nil {
				return err
			}
			v, err := tv.verification()
			if err != nil {
				return err
			}
			r, err := c.CreateTargetGroup(ctx, &api.CreateTargetGroupRequest{Name: args[0], Protocol: protocol, ProtocolVersion: version, Port: port, VpcID: vpc, HealthCheck: hc,
				TLSVerification: v, ClientCertificateID: clientCert, Tags: t})
			if err != nil {
				return err
			}
			return g.emit(r, tgTable([]api.TargetGroup{r.TargetGroup}))
		}),
	}
	f := c.Flags()
	f.StringVar(&vpc, "vpc", "", "VPC ID (required)")
	f.StringVar(&protocol, "protocol", api.ProtocolTCP, "TCP, UDP or TCP_UDP (network), HTTP, HTTPS or TLS (application; TLS: behind a TLS listener that terminates TLS, encrypted again)")
	f.StringVar(&version, "protocol-version", "", "HTTP1 (default), HTTP2 or GRPC (HTTP and HTTPS groups)")
	f.IntVar(&port, "port", 0, "the targets' default port (required)")
	f.StringVar(&hc.Protocol, "hc-protocol", "", "health check protocol TCP or HTTP (default TCP; HTTP and HTTPS groups: HTTP or HTTPS, default theirs; TLS groups: TLS, a verified handshake, the default, or TCP)")
	f.StringVar(&hc.Port, "hc-port", "", "health check port or traffic-port (default)")
	f.StringVar(&hc.Path, "hc-path", "", "HTTP health check path (default /)")
	f.IntVar(&hc.IntervalSeconds, "hc-interval", 0, "seconds between checks (default 10)")
	f.IntVar(&hc.TimeoutSeconds, "hc-timeout", 0, "seconds before a check fails (default 10)")
	f.IntVar(&hc.HealthyThresholdCount, "hc-healthy", 0, "passes to become healthy (default 3)")
	f.IntVar(&hc.UnhealthyThresholdCount, "hc-unhealthy", 0, "failures to become unhealthy (default 3)")
	f.StringVar(&hc.Matcher, "hc-matcher", "", "HTTP codes counted healthy (default 200-399)")
	f.StringArrayVar(&tags, "tag", nil, "tag KEY=VALUE (repeatable)")
	f.StringVar(&tv.serverName, "tls-server-name", "", "verify the targets' certificates (HTTPS and TLS): the SNI name and, without --tls-san, the name they must hold")
	f.StringVar(&tv.caFile, "tls-ca-file", "", "PEM file of the roots the targets' chains must end at (with --tls-server-name)")
	f.BoolVar(&tv.systemRoots, "tls-system-roots", false, "verify against fakecloud's system trust store instead of --tls-ca-file")
	f.StringArrayVar(&tv.sans, "tls-san", nil, "Hostname=NAME or URI=URI the certificates must hold one of, instead of the server name (repeatable)")
	f.StringVar(&clientCert, "client-certificate", "", "imported certificate ID (cert import) the load balancer presents to the targets as its TLS client certificate (HTTPS and TLS)")
	_ = c.MarkFlagRequired("vpc")
	_ = c.MarkFlagRequired("port")
	c.MarkFlagsMutuallyExclusive("tls-ca-file", "tls-system-roots")
	return c
}

// tlsFlags are tg create's --tls-* flags: a TlsVerification when any is given (the server
// checks it and names what is missing).
type tlsFlags struct {
	serverName, caFile string
	systemRoots        bool
	sans               []string
}

func (f tlsFlags) verification() (*api.TLSVerification, error) {
	if f.serverName == "" && f.caFile == "" && !f.systemRoots && len(f.sans) == 0 {
		return nil, nil
	}
	v := &api.TLSVerification{ServerName: f.serverName, UseSystemRoots: f.systemRoots}
	if f.caFile != "" {
		body, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca-file: %w", err)
		}
		v.CACertificatesPEM = string(body)
	}
	for _, s := range f.sans {
		typ, val, ok := strings.Cut(s, "=")
		if !ok || typ != api.SANTypeHostname && typ != api.SANTypeURI {
			return nil, fmt.Errorf("--tls-san %q: want Hostname=NAME or URI=URI", s)
		}
		v.SubjectAltNames = append(v.SubjectAltNames, api.SubjectAltName{Type: typ, Value: val})
	}
	return v, nil
}

func tgListCmd(g *globals) *cobra.Command {
	var lb string
	c := &cobra.Command{
		Use: "list", Short: "List target groups", Args: cobra.NoArgs,
		RunE: g.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			r, err := c.DescribeTargetGroups(ctx, &api.DescribeTargetGroupsRequest{LoadBalancerID: lb})
			if err != nil {
				return err
			}
			return g.emit(r, tgTable(r.TargetGroups))
		}),
	}
	c.Flags().StringVar(&lb, "lb", "", "only those a load balancer forwards to")
	return c
}

func tgDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "delete TG...", Short: "Delete target groups no listener uses", Args: cobra.MinimumNArgs(1),
		RunE: g.deleteEach(func(ctx context.Context, c *client.Client, id string) (any, error) {
			return c.DeleteTargetGroup(ctx, &api.DeleteTargetGroupRequest{TargetGroupID: id})
		}),
	}
}

func tgDelayCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "deregistration-delay TG SECONDS", Short: "Set how long deregistered targets drain (0-3600)", Args: cobra.ExactArgs(2),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			r, err := c.ModifyTargetGroupAttributes(ctx, &api.ModifyTargetGroupAttributesRequest{TargetGroupID: args[0],
				Attributes: []api.Attribute{{Key: api.AttributeDeregistrationDelay, Value: args[1]}}})
			if err != nil {
				return err
			}
			return g.done(r, "%s deregistration delay: %s s", args[0], r.Attributes[0].Value)
		}),
	}
}

// tgTargetsCmd is "register" or, with register false, "deregister".
func tgTargetsCmd(g *globals, register bool) *cobra.Command {
	verb, short := "deregister", "Start draining targets"
	if register {
		verb, short = "register", "Register IP[:PORT] targets (the port defaults to the group's)"
	}
	return &cobra.Command{
		Use: verb + " TG IP[:PORT]...", Short: short, Args: cobra.MinimumNArgs(2),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			targets, err := parseTargets(args[1:])
			if err != nil {
				return err
			}
			if register {
				r, err := c.RegisterTargets(ctx, &api.RegisterTargetsRequest{TargetGroupID: args[0], Targets: targets})
				if err != nil {
					return err
				}
				return g.done(r, "registered %d targets with %s", len(targets), args[0])
			}
			r, err := c.DeregisterTargets(ctx, &api.DeregisterTargetsRequest{TargetGroupID: args[0], Targets: targets})
			if err != nil {
				return err
			}
			return g.done(r, "deregistering %d targets from %s", len(targets), args[0])
		}),
	}
}

func parseTargets(args []string) ([]api.Target, error) {
	out := make([]api.Target, 0, len(args))
	for _, a := range args {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			out = append(out, api.Target{IP: a})
			continue
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("target %q: the port must be a number", a)
		}
		out = append(out, api.Target{IP: host, Port: p})
	}
	return out, nil
}

func tgHealthCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "health TG", Short: "Show each target's health", Args: cobra.ExactArgs(1),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			r, err := c.DescribeTargetHealth(ctx, &api.DescribeTargetHealthRequest{TargetGroupID: args[0]})
			if err != nil {
				return err
			}
			return g.emit(r, targetHealthTable(r.TargetHealthDescriptions))
		}),
	}
}

func lbTable(lbs []api.LoadBalancer) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		row(w, "ID", "NAME", "SCHEME", "STATE", "VIP", "PRIVATE IP", "SUBNET", "SOURCE RANGES", "TAGS", "REASON")
		for _, lb := range lbs {
			row(w, lb.LoadBalancerID, lb.LoadBalancerName, lb.Scheme, lb.State, lb.VIP, lb.PrivateIPAddress, lb.SubnetID,
				orDash(strings.Join(lb.SourceRanges, ",")), tagsString(lb.Tags), orDash(lb.StateReason))
		}
	}
}

func listenerTable(ls []api.Listener) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		row(w, "ID", "LOAD BALANCER", "PROTOCOL", "PORT", "DEFAULT ACTION", "CERTIFICATES")
		for _, l := range ls {
			act := ""
			if len(l.DefaultActions) > 0 {
				act = actionString(l.DefaultActions[0])
			}
			var certs []string
			for _, c := range l.Certificates {
				certs = append(certs, c.CertificateID)
			}
			protocol := l.Protocol
			if m := l.MutualAuthentication; m != nil {
				protocol += " (mTLS " + m.Mode + ")"
			}
			row(w, l.ListenerID, l.LoadBalancerID, protocol, strconv.Itoa(l.Port), act, orDash(strings.Join(certs, ",")))
		}
	}
}

// mtlsFlags are listener create's and modify's --mtls and --mtls-ca-file: a
// MutualAuthentication when --mtls is given (the server checks it and names what is missing).
type mtlsFlags struct {
	mode, caFile string
}

func (f mtlsFlags) authentication() (*api.MutualAuthentication, error) {
	if f.mode == "" {
		if f.caFile != "" {
			return nil, fmt.Errorf("--mtls-ca-file needs --mtls verify or passthrough")
		}
		return nil, nil
	}
	m := &api.MutualAuthentication{Mode: f.mode}
	if f.caFile != "" {
		body, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("--mtls-ca-file: %w", err)
		}
		m.CACertificatesPEM = string(body)
	}
	return m, nil
}

func tgTable(tgs []api.TargetGroup) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		row(w, "ID", "NAME", "PROTOCOL", "PORT", "VPC", "HEALTH CHECK", "DELAY", "LOAD BALANCERS", "TAGS")
		for _, tg := range tgs {
			hc := tg.HealthCheck
			check := fmt.Sprintf("%s %s%s every %ds", hc.Protocol, hc.Port, hc.Path, hc.IntervalSeconds)
			protocol := tg.Protocol
			var tlsNotes []string
			if v := tg.TLSVerification; v != nil {
				tlsNotes = append(tlsNotes, "verifies "+v.ServerName)
			}
			if tg.ClientCertificateID != "" {
				tlsNotes = append(tlsNotes, "presents "+tg.ClientCertificateID)
			}
			if len(tlsNotes) > 0 {
				protocol += " (" + strings.Join(tlsNotes, ", ") + ")"
			}
			row(w, tg.TargetGroupID, tg.TargetGroupName, protocol, strconv.Itoa(tg.Port), tg.VpcID, check,
				strconv.Itoa(tg.DeregistrationDelaySeconds)+"s", orDash(strings.Join(tg.LoadBalancerIDs, ",")), tagsString(tg.Tags))
		}
	}
}

func targetHealthTable(ts []api.TargetHealthDescription) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		row(w, "TARGET", "STATE", "REASON", "DRAIN DEADLINE", "DESCRIPTION")
		for _, t := range ts {
			deadline := ""
			if !t.DrainDeadline.IsZero() {
				deadline = t.DrainDeadline.UTC().Format("15:04:05")
			}
			row(w, net.JoinHostPort(t.Target.IP, strconv.Itoa(t.Target.Port)), t.TargetHealth.State, orDash(t.TargetHealth.Reason), orDash(deadline),
				orDash(t.TargetHealth.Description))
		}
	}
}

// listenerFlags reads the flags listener create and modify share: --target-group (a forward to
// one group) or --default-actions (JSON), and --certificate (the default certificate).
func listenerFlags(tg, actions, cert string) ([]api.Action, []api.ListenerCertificate, error) {
	var acts []api.Action
	if tg != "" {
		acts = []api.Action{{Type: api.ActionTypeForward, TargetGroupID: tg}}
	}
	if actions != "" {
		if err := jsonFlag("default-actions", actions, &acts); err != nil {
			return nil, nil, err
		}
	}
	var certs []api.ListenerCertificate
	if cert != "" {
		certs = []api.ListenerCertificate{{CertificateID: cert}}
	}
	return acts, certs, nil
}

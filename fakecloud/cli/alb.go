package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/client"
	"github.com/flatnet/flatnet/fakecloud/internal/state"
)

// The application load balancer's commands: rules (`lb rule`), listener changes and
// certificates (`lb listener modify|certificates`), and imported certificates (`cert`).

// ruleFlags build a rule's conditions and actions: from JSON (--conditions, --actions: inline
// or @FILE), or from the shorthand flags for the common cases.
type ruleFlags struct {
	conditions, actions string
	hosts, paths        []string
	pathType            string
	methods             []string
	headers, queries    []string
	targetGroups        []string
	fixedResponse       string
	redirectTo          string
}

func (o *ruleFlags) add(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&o.conditions, "conditions", "", "conditions as JSON (inline or @FILE), as in CreateRule")
	f.StringVar(&o.actions, "actions", "", "actions as JSON (inline or @FILE), as in CreateRule")
	f.StringArrayVar(&o.hosts, "host", nil, "host-header value (repeatable; *.example.com for a wildcard)")
	f.StringArrayVar(&o.paths, "path", nil, "path-pattern value (repeatable)")
	f.StringVar(&o.pathType, "path-type", "", "path match type: Exact (default), Prefix or Regex")
	f.StringArrayVar(&o.methods, "method", nil, "http-request-method value (repeatable)")
	f.StringArrayVar(&o.headers, "header", nil, "http-header condition NAME=VALUE (repeatable)")
	f.StringArrayVar(&o.queries, "query", nil, "query-string condition KEY=VALUE (repeatable)")
	f.StringArrayVar(&o.targetGroups, "target-group", nil, "forward to TG or TG=WEIGHT (repeatable: weighted)")
	f.StringVar(&o.fixedResponse, "fixed-response", "", "answer with this status code instead of forwarding")
	f.StringVar(&o.redirectTo, "redirect", "", "redirect to HTTPS with this status (HTTP_301 ... HTTP_308), keeping host, path and query")
}

// jsonFlag decodes a flag holding JSON or @FILE.
func jsonFlag(name, v string, out any) error {
	body := []byte(v)
	if rest, ok := strings.CutPrefix(v, "@"); ok {
		var err error
		if body, err = os.ReadFile(rest); err != nil {
			return fmt.Errorf("--%s: %w", name, err)
		}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("--%s is not valid JSON for the request field: %w", name, err)
	}
	return nil
}

func (o *ruleFlags) build() ([]api.RuleCondition, []api.Action, error) {
	var conds []api.RuleCondition
	var acts []api.Action
	if o.conditions != "" {
		if err := jsonFlag("conditions", o.conditions, &conds); err != nil {
			return nil, nil, err
		}
	}
	if o.actions != "" {
		if err := jsonFlag("actions", o.actions, &acts); err != nil {
			return nil, nil, err
		}
	}
	if len(o.hosts) > 0 {
		conds = append(conds, api.RuleCondition{Field: api.ConditionHostHeader, HostHeaderConfig: &api.HostHeaderConditionConfig{Values: o.hosts}})
	}
	if len(o.paths) > 0 {
		conds = append(conds, api.RuleCondition{Field: api.ConditionPathPattern, PathPatternConfig: &api.PathPatternConditionConfig{Values: o.paths, MatchType: o.pathType}})
	}
	if len(o.methods) > 0 {
		conds = append(conds, api.RuleCondition{Field: api.ConditionHTTPRequestMethod, HTTPRequestMethodConfig: &api.HTTPRequestMethodConditionConfig{Values: o.methods}})
	}
	for _, h := range o.headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok {
			return nil, nil, fmt.Errorf("--header %q: want NAME=VALUE", h)
		}
		conds = append(conds, api.RuleCondition{Field: api.ConditionHTTPHeader, HTTPHeaderConfig: &api.HTTPHeaderConditionConfig{HTTPHeaderName: k, Values: []string{v}}})
	}
	for _, q := range o.queries {
		k, v, ok := strings.Cut(q, "=")
		if !ok {
			return nil, nil, fmt.Errorf("--query %q: want KEY=VALUE", q)
		}
		conds = append(conds, api.RuleCondition{Field: api.ConditionQueryString, QueryStringConfig: &api.QueryStringConditionConfig{Values: []api.QueryStringKeyValue{{Key: k, Value: v}}}})
	}
	a, err := o.shorthandAction()
	if err != nil {
		return nil, nil, err
	}
	if a != nil {
		acts = append(acts, *a)
	}
	return conds, acts, nil
}

// shorthandAction is the action of --target-group, --fixed-response or --redirect, if any.
func (o *ruleFlags) shorthandAction() (*api.Action, error) {
	switch {
	case len(o.targetGroups) > 0:
		fc := &api.ForwardActionConfig{}
		for _, tg := range o.targetGroups {
			id, w, weighted := strings.Cut(tg, "=")
			t := api.TargetGroupTuple{TargetGroupID: id}
			if weighted {
				n, err := strconv.Atoi(w)
				if err != nil {
					return nil, fmt.Errorf("--target-group %q: the weight must be a number", tg)
				}
				t.Weight = &n
			}
			fc.TargetGroups = append(fc.TargetGroups, t)
		}
		return &api.Action{Type: api.ActionTypeForward, ForwardConfig: fc}, nil
	case o.fixedResponse != "":
		return &api.Action{Type: api.ActionTypeFixedResponse, FixedResponseConfig: &api.FixedResponseActionConfig{StatusCode: o.fixedResponse}}, nil
	case o.redirectTo != "":
		return &api.Action{Type: api.ActionTypeRedirect, RedirectConfig: &api.RedirectActionConfig{Protocol: api.ProtocolHTTPS, StatusCode: o.redirectTo}}, nil
	}
	return nil, nil
}

func newRuleCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "rule", Short: "Manage the rules of an application load balancer's listeners"}
	var create ruleFlags
	var priority int
	createCmd := &cobra.Command{
		Use: "create LISTENER --priority N [conditions] [action]", Short: "Add a rule", Args: cobra.ExactArgs(1),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			conds, acts, err := create.build()
			if err != nil {
				return err
			}
			r, err := c.CreateRule(ctx, &api.CreateRuleRequest{ListenerID: args[0], Priority: priority, Conditions: conds, Actions: acts})
			if err != nil {
				return err
			}
			return g.emit(r, ruleTable([]api.Rule{r.Rule}))
		}),
	}
	create.add(createCmd)
	createCmd.Flags().IntVar(&priority, "priority", 0, "priority 1-50000, unique per listener (required)")
	_ = createCmd.MarkFlagRequired("priority")

	var modify ruleFlags
	modifyCmd := &cobra.Command{
		Use: "modify RULE [conditions] [action]", Short: "Replace a rule's conditions, action, or both", Args: cobra.ExactArgs(1),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			conds, acts, err := modify.build()
			if err != nil {
				return err
			}
			r, err := c.ModifyRule(ctx, &api.ModifyRuleRequest{RuleID: args[0], Conditions: conds, Actions: acts})
			if err != nil {
				return err
			}
			return g.emit(r, ruleTable([]api.Rule{r.Rule}))
		}),
	}
	modify.add(modifyCmd)
	list := &cobra.Command{
		Use: "list LISTENER", Short: "List a listener's rules by priority, then its default rule", Args: cobra.ExactArgs(1),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			r, err := c.DescribeRules(ctx, &api.DescribeRulesRequest{ListenerID: args[0]})
			if err != nil {
				return err
			}
			return g.emit(r, ruleTable(r.Rules))
		}),
	}
	del := &cobra.Command{
		Use: "delete RULE...", Short: "Delete rules", Args: cobra.MinimumNArgs(1),
		RunE: g.deleteEach(func(ctx context.Context, c *client.Client, id string) (any, error) {
			return c.DeleteRule(ctx, &api.DeleteRuleRequest{RuleID: id})
		}),
	}
	prio := &cobra.Command{
		Use: "priorities RULE=PRIORITY...", Short: "Set rule priorities in one step (rules may swap)", Args: cobra.MinimumNArgs(1),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			req := &api.SetRulePrioritiesRequest{}
			for _, a := range args {
				id, p, ok := strings.Cut(a, "=")
				n, err := strconv.Atoi(p)
				if !ok || err != nil {
					return fmt.Errorf("%q: want RULE=PRIORITY", a)
				}
				req.RulePriorities = append(req.RulePriorities, api.RulePriorityPair{RuleID: id, Priority: n})
			}
			r, err := c.SetRulePriorities(ctx, req)
			if err != nil {
				return err
			}
			return g.emit(r, ruleTable(r.Rules))
		}),
	}
	cmd.AddCommand(createCmd, modifyCmd, list, del, prio)
	return cmd
}

func listenerModifyCmd(g *globals) *cobra.Command {
	var protocol, tg, actions, cert, policy string
	var port int
	var scopes []string
	var mtls mtlsFlags
	var self *cobra.Command
	c := &cobra.Command{
		Use:   "modify LISTENER",
		Short: "Change a listener's port, protocol, default action, SSL policy, default certificate, hostname scopes or client certificate validation",
		Args:  cobra.ExactArgs(1),
		RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			req := &api.ModifyListenerRequest{ListenerID: args[0], Protocol: protocol, Port: port, SSLPolicy: policy}
			if self.Flags().Changed("hostname-scopes") {
				req.HostnameScopes = &scopes
			}
			var err error
			if req.DefaultActions, req.Certificates, err = listenerFlags(tg, actions, cert); err != nil {
				return err
			}
			if req.MutualAuthentication, err = mtls.authentication(); err != nil {
				return err
			}
			r, err := c.ModifyListener(ctx, req)
			if err != nil {
				return err
			}
			return g.emit(r, listenerTable([]api.Listener{r.Listener}))
		}),
	}
	self = c
	f := c.Flags()
	f.StringVar(&protocol, "protocol", "", "new protocol")
	f.IntVar(&port, "port", 0, "new port")
	f.StringVar(&tg, "target-group", "", "forward to this target group by default")
	f.StringVar(&actions, "default-actions", "", "default actions as JSON (inline or @FILE)")
	f.StringVar(&cert, "certificate", "", "new default certificate (HTTPS)")
	f.StringVar(&policy, "ssl-policy", "", "SSL policy (HTTPS)")
	f.StringSliceVar(&scopes, "hostname-scopes", nil, `the listener's hostname scopes, replacing its own (HTTPS; "" removes them; see listener create --hostname-scope)`)
	f.StringVar(&mtls.mode, "mtls", "", "client certificate validation, replacing the listener's (HTTPS): verify, passthrough or off (see listener create --mtls)")
	f.StringVar(&mtls.caFile, "mtls-ca-file", "", "PEM file of the CA certificates clients' certificate chains must end at (with --mtls)")
	c.MarkFlagsMutuallyExclusive("target-group", "default-actions")
	return c
}

func listenerCertsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "certificates", Short: "Manage an HTTPS listener's extra (SNI) certificates"}
	for _, add := range []bool{true, false} {
		verb, short := "remove", "Stop serving certificates (not the default one)"
		if add {
			verb, short = "add", "Also serve certificates to clients whose SNI name they match"
		}
		cmd.AddCommand(&cobra.Command{
			Use: verb + " LISTENER CERT...", Short: short, Args: cobra.MinimumNArgs(2),
			RunE: g.withClient(func(ctx context.Context, c *client.Client, args []string) error {
				var certs []api.ListenerCertificate
				for _, id := range args[1:] {
					certs = append(certs, api.ListenerCertificate{CertificateID: id})
				}
				if add {
					r, err := c.AddListenerCertificates(ctx, &api.AddListenerCertificatesRequest{ListenerID: args[0], Certificates: certs})
					if err != nil {
						return err
					}
					return g.done(r, "%s serves %d certificates", args[0], len(r.Certificates))
				}
				r, err := c.RemoveListenerCertificates(ctx, &api.RemoveListenerCertificatesRequest{ListenerID: args[0], Certificates: certs})
				if err != nil {
					return err
				}
				return g.done(r, "removed %d certificates from %s", len(certs), args[0])
			}),
		})
	}
	return cmd
}

func newCertCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cert", Short: "Manage certificates for HTTPS listeners"}
	var certFile, keyFile, chainFile string
	var tags []string
	imp := &cobra.Command{
		Use: "import --cert FILE --key FILE [--chain FILE]", Short: "Import a PEM certificate and its private key", Args: cobra.NoArgs,
		RunE: g.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			t, err := parseTags(tags)
			if err != nil {
				return err
			}
			req := &api.ImportCertificateRequest{Tags: t}
			for _, f := range []struct {
				path string
				dst  *string
			}{{certFile, &req.Certificate}, {keyFile, &req.PrivateKey}, {chainFile, &req.CertificateChain}} {
				if f.path == "" {
					continue
				}
				body, err := os.ReadFile(f.path)
				if err != nil {
					return err
				}
				*f.dst = string(body)
			}
			r, err := c.ImportCertificate(ctx, req)
			if err != nil {
				return err
			}
			return g.emit(r, certTable([]api.Certificate{r.Certificate}))
		}),
	}
	imp.Flags().StringVar(&certFile, "cert", "", "PEM certificate file, leaf first (required)")
	imp.Flags().StringVar(&keyFile, "key", "", "PEM private key file (required)")
	imp.Flags().StringVar(&chainFile, "chain", "", "PEM chain file")
	imp.Flags().StringArrayVar(&tags, "tag", nil, "tag KEY=VALUE (repeatable)")
	_ = imp.MarkFlagRequired("cert")
	_ = imp.MarkFlagRequired("key")
	list := &cobra.Command{
		Use: "list", Short: "List certificates (never their keys)", Args: cobra.NoArgs,
		RunE: g.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			r, err := c.DescribeCertificates(ctx, &api.DescribeCertificatesRequest{})
			if err != nil {
				return err
			}
			return g.emit(r, certTable(r.Certificates))
		}),
	}
	del := &cobra.Command{
		Use: "delete CERT...", Short: "Delete certificates no listener serves", Args: cobra.MinimumNArgs(1),
		RunE: g.deleteEach(func(ctx context.Context, c *client.Client, id string) (any, error) {
			return c.DeleteCertificate(ctx, &api.DeleteCertificateRequest{CertificateID: id})
		}),
	}
	cmd.AddCommand(imp, list, del)
	return cmd
}

func ruleTable(rules []api.Rule) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		row(w, "ID", "LISTENER", "PRIORITY", "CONDITIONS", "ACTION")
		for _, r := range rules {
			prio := strconv.Itoa(r.Priority)
			if r.IsDefault {
				prio = "default"
			}
			var conds []string
			for _, c := range r.Conditions {
				conds = append(conds, conditionString(c))
			}
			act := ""
			if len(r.Actions) > 0 {
				act = actionString(r.Actions[0])
			}
			row(w, r.RuleID, r.ListenerID, prio, orDash(strings.Join(conds, " & ")), act)
		}
	}
}

func conditionString(c api.RuleCondition) string {
	switch {
	case c.HostHeaderConfig != nil:
		return "host=" + strings.Join(c.HostHeaderConfig.Values, "|")
	case c.PathPatternConfig != nil:
		return "path(" + c.PathPatternConfig.MatchType + ")=" + strings.Join(c.PathPatternConfig.Values, "|")
	case c.HTTPHeaderConfig != nil:
		return c.HTTPHeaderConfig.HTTPHeaderName + "=" + strings.Join(c.HTTPHeaderConfig.Values, "|")
	case c.QueryStringConfig != nil:
		var kv []string
		for _, q := range c.QueryStringConfig.Values {
			kv = append(kv, q.Key+"="+q.Value)
		}
		return "query:" + strings.Join(kv, "|")
	case c.HTTPRequestMethodConfig != nil:
		return "method=" + strings.Join(c.HTTPRequestMethodConfig.Values, "|")
	}
	return c.Field
}

func actionString(a api.Action) string {
	switch {
	case a.ForwardConfig != nil:
		var tgs []string
		for _, t := range a.ForwardConfig.TargetGroups {
			w := 1
			if t.Weight != nil {
				w = *t.Weight
			}
			tgs = append(tgs, fmt.Sprintf("%s=%d", t.TargetGroupID, w))
		}
		return "forward " + strings.Join(tgs, ",")
	case a.RedirectConfig != nil:
		return "redirect " + a.RedirectConfig.StatusCode
	case a.FixedResponseConfig != nil:
		return "fixed-response " + a.FixedResponseConfig.StatusCode
	}
	return a.Type + " " + a.TargetGroupID
}

func certTable(certs []api.Certificate) func(*tabwriter.Writer) {
	return func(w *tabwriter.Writer) {
		row(w, "ID", "DOMAIN", "NAMES", "KEY", "NOT AFTER", "IN USE BY")
		for _, c := range certs {
			row(w, c.CertificateID, c.DomainName, orDash(strings.Join(c.SubjectAlternativeNames, ",")), c.KeyAlgorithm,
				c.NotAfter.UTC().Format("2006-01-02"), orDash(strings.Join(c.InUseBy, ",")))
		}
	}
}

// albLimitFields are the quotas `serve --alb-limit NAME=N` sets.
func albLimitFields(l *state.ALBLimits) map[string]*int {
	return map[string]*int{
		"rules-per-load-balancer":   &l.RulesPerLoadBalancer,
		"condition-values-per-rule": &l.ConditionValuesPerRule,
		"target-groups-per-action":  &l.TargetGroupsPerAction,
		"certificates-per-listener": &l.CertificatesPerListener,
		"certificates":              &l.Certificates,
	}
}

func albLimitNames() []string {
	names := []string{}
	for n := range albLimitFields(&state.ALBLimits{}) {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// parseALBLimits reads --alb-limit NAME=N flags; quotas not named keep AWS's defaults.
func parseALBLimits(flags []string) (state.ALBLimits, error) {
	var l state.ALBLimits
	fields := albLimitFields(&l)
	for _, f := range flags {
		name, v, _ := strings.Cut(f, "=")
		dst, ok := fields[name]
		if !ok {
			return l, fmt.Errorf("--alb-limit %q: the quota must be one of %s", f, strings.Join(albLimitNames(), ", "))
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return l, fmt.Errorf("--alb-limit %q: want %s=N with N at least 1", f, name)
		}
		*dst = n
	}
	return l, nil
}

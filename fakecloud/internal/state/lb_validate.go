package state

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"unicode"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// Load balancer limits: AWS's default quotas for network load balancers (docs/fakecloud-api.md).
const (
	maxLoadBalancers       = 50   // per account
	maxListenersPerLB      = 50   // per load balancer
	maxTargetGroups        = 3000 // per account
	maxTargetsPerGroup     = 1000 // per target group
	maxSourceRanges        = 60   // the default rules of a security group, which they stand in for
	maxLBNameLen           = 32
	maxDeregistrationDelay = 3600
	defaultDeregistration  = 300
	maxDescribeTags        = 20
)

// Health check defaults of a network load balancer (docs/cloud-reference.md); the HTTP path and matcher
// are ELBv2's defaults for network load balancers.
const (
	defaultHCInterval  = 10
	defaultHCTimeout   = 10
	defaultHCThreshold = 3
	defaultHCPath      = "/"
	defaultHCMatcher   = "200-399"
)

func invalid(format string, args ...any) error {
	return api.Errorf(api.CodeValidationError, format, args...)
}

// validateLBName checks a load balancer or target group name as ELBv2 does.
func validateLBName(field, name string) error {
	switch {
	case name == "":
		return invalid("%s is required", field)
	case len(name) > maxLBNameLen:
		return invalid("%s %q is longer than %d characters", field, name, maxLBNameLen)
	case strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-"):
		return invalid("%s %q must not begin or end with a hyphen", field, name)
	case strings.HasPrefix(name, "internal-"):
		return invalid("%s %q must not begin with \"internal-\"", field, name)
	}
	for _, r := range name {
		letter, digit := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z', r >= '0' && r <= '9'
		if !letter && !digit && r != '-' {
			return invalid("%s %q may hold only letters, digits and hyphens", field, name)
		}
	}
	return nil
}

// validateLBTags checks tags with the load balancer API's codes.
func validateLBTags(tags []api.Tag) error {
	if len(tags) > maxTagsPerResource {
		return api.Errorf(api.CodeTooManyTags, "%d tags given; a resource holds at most %d", len(tags), maxTagsPerResource)
	}
	if err := validateTags(tags); err != nil {
		var e *api.Error
		if errors.As(err, &e) {
			return invalid("Tags: %s", e.Message)
		}
		return err
	}
	for _, tg := range tags {
		if !lbTagChars(tg.Key) || !lbTagChars(tg.Value) {
			return invalid("Tags: tag %q=%q: keys and values hold letters, digits, spaces and _ . : / = + - @ only", tg.Key, tg.Value)
		}
	}
	return nil
}

// lbTagChars: s holds only what the load balancer API takes in a tag (ELBv2's
// ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$).
func lbTagChars(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsNumber(r) && !unicode.Is(unicode.Z, r) && !strings.ContainsRune("_.:/=+-@", r) {
			return false
		}
	}
	return true
}

func validatePort(field string, port int) error {
	if port < 1 || port > 65535 {
		return invalid("%s %d is outside 1..65535", field, port)
	}
	return nil
}

// completeHealthCheck fills in defaults and checks every field.
func completeHealthCheck(hc api.HealthCheck) (api.HealthCheck, error) {
	if hc.Protocol == "" {
		hc.Protocol = api.ProtocolTCP
	}
	switch hc.Protocol {
	case api.ProtocolTCP:
		if hc.Path != "" || hc.Matcher != "" {
			return hc, invalid("HealthCheck.Path and HealthCheck.Matcher apply to HTTP health checks only; HealthCheck.Protocol is TCP")
		}
	case api.ProtocolHTTP:
		if hc.Path == "" {
			hc.Path = defaultHCPath
		}
		if hc.Matcher == "" {
			hc.Matcher = defaultHCMatcher
		}
		if !strings.HasPrefix(hc.Path, "/") || len(hc.Path) > 1024 {
			return hc, invalid("HealthCheck.Path %.40q must begin with / and hold at most 1024 characters", hc.Path)
		}
		if err := validateMatcher(hc.Matcher); err != nil {
			return hc, err
		}
	default:
		return hc, invalid("HealthCheck.Protocol %q is not supported: use TCP or HTTP", hc.Protocol)
	}
	return finishHealthCheck(hc)
}

// finishHealthCheck fills in the port and the network defaults of the numbers left zero, and
// checks them.
func finishHealthCheck(hc api.HealthCheck) (api.HealthCheck, error) {
	if hc.Port == "" {
		hc.Port = api.HealthCheckPortTraffic
	}
	if hc.Port != api.HealthCheckPortTraffic {
		n, err := strconv.Atoi(hc.Port)
		if err != nil || n < 1 || n > 65535 {
			return hc, invalid("HealthCheck.Port %.20q must be %q or a port in 1..65535", hc.Port, api.HealthCheckPortTraffic)
		}
	}
	hc.IntervalSeconds = orDefault(hc.IntervalSeconds, defaultHCInterval)
	hc.TimeoutSeconds = orDefault(hc.TimeoutSeconds, defaultHCTimeout)
	hc.HealthyThresholdCount = orDefault(hc.HealthyThresholdCount, defaultHCThreshold)
	hc.UnhealthyThresholdCount = orDefault(hc.UnhealthyThresholdCount, defaultHCThreshold)
	for _, r := range []struct {
		field   string
		v, a, b int
	}{
		{"HealthCheck.IntervalSeconds", hc.IntervalSeconds, 5, 300},
		{"HealthCheck.TimeoutSeconds", hc.TimeoutSeconds, 2, 120},
		{"HealthCheck.HealthyThresholdCount", hc.HealthyThresholdCount, 2, 10},
		{"HealthCheck.UnhealthyThresholdCount", hc.UnhealthyThresholdCount, 2, 10},
	} {
		if r.v < r.a || r.v > r.b {
			return hc, invalid("%s %d is outside %d..%d", r.field, r.v, r.a, r.b)
		}
	}
	if hc.TimeoutSeconds > hc.IntervalSeconds {
		return hc, invalid("HealthCheck.TimeoutSeconds %d must not exceed HealthCheck.IntervalSeconds %d", hc.TimeoutSeconds, hc.IntervalSeconds)
	}
	return hc, nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// validateMatcher accepts "200", "200,202" or "200-299", codes 200..599.
func validateMatcher(m string) error { return validateMatcherRange(m, 200, 599) }

// validateMatcherRange accepts "200", "200,202" or "200-299", codes lo..hi (HTTP codes, or
// gRPC status codes 0..99).
func validateMatcherRange(m string, lo, hi int) error {
	kind, eg := "HTTP codes", `"200", "200,202" or "200-299"`
	if hi < 200 {
		kind, eg = "gRPC codes", `"0", "0,12" or "0-99"`
	}
	bad := invalid("HealthCheck.Matcher %.40q must be %s in %d..%d: %s", m, kind, lo, hi, eg)
	code := func(s string) (int, bool) {
		n, err := strconv.Atoi(s)
		return n, err == nil && n >= lo && n <= hi
	}
	if lo, hi, ok := strings.Cut(m, "-"); ok {
		a, okA := code(lo)
		b, okB := code(hi)
		if !okA || !okB || a > b {
			return bad
		}
		return nil
	}
	for part := range strings.SplitSeq(m, ",") {
		if _, ok := code(part); !ok {
			return bad
		}
	}
	return nil
}

// parseSourceRanges parses the comma-separated CIDRs of the source-ranges attribute.
func parseSourceRanges(v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var out []string
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		p, err := netip.ParsePrefix(part)
		if err != nil || !p.Addr().Is4() {
			return nil, invalid("attribute %s: %.50q is not an IPv4 CIDR", api.AttributeSourceRanges, part)
		}
		if p.Masked() != p {
			return nil, invalid("attribute %s: %s has host bits set; did you mean %s?", api.AttributeSourceRanges, part, p.Masked())
		}
		out = append(out, p.String())
	}
	if len(out) > maxSourceRanges {
		return nil, invalid("attribute %s: %d ranges given; at most %d", api.AttributeSourceRanges, len(out), maxSourceRanges)
	}
	if err := noDuplicates(api.AttributeSourceRanges, out); err != nil {
		return nil, invalid("attribute %s lists a range twice", api.AttributeSourceRanges)
	}
	return out, nil
}

// lookups that fail with the load balancer API's NotFound codes

func getLB(txn *memdb.Txn, id string) (*lbRec, error) {
	if id == "" {
		return nil, invalid("LoadBalancerId is required")
	}
	if r := first[lbRec](txn, tableLoadBalancers, indexID, id); r != nil {
		return r, nil
	}
	return nil, api.Errorf(api.CodeLoadBalancerNotFound, "load balancer %q does not exist", id)
}

func getTG(txn *memdb.Txn, id string) (*tgRec, error) {
	if id == "" {
		return nil, invalid("TargetGroupId is required")
	}
	if r := first[tgRec](txn, tableTargetGroups, indexID, id); r != nil {
		return r, nil
	}
	return nil, api.Errorf(api.CodeTargetGroupNotFound, "target group %q does not exist", id)
}

func getListener(txn *memdb.Txn, id string) (*listenerRec, error) {
	if id == "" {
		return nil, invalid("ListenerId is required")
	}
	if r := first[listenerRec](txn, tableListeners, indexID, id); r != nil {
		return r, nil
	}
	return nil, api.Errorf(api.CodeListenerNotFound, "listener %q does not exist", id)
}

func count(txn *memdb.Txn, table, index string, args ...any) int {
	it, err := txn.Get(table, index, args...)
	if err != nil {
		return 0
	}
	n := 0
	for raw := it.Next(); raw != nil; raw = it.Next() {
		n++
	}
	return n
}

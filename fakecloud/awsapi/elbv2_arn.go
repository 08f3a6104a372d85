package awsapi

import (
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/awsapi/creds"
)

// ELBv2 names resources by ARN where fakecloud uses IDs (lb-, tg-, listener-, rule- and 17
// hexadecimal digits). The ARNs are AWS's shapes with the ID's digits in the ID's place, net/
// for network load balancers and app/ for application ones:
//
//	arn:aws:elasticloadbalancing:<region>:<account>:loadbalancer/net/<name>/<digits>
//	arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<digits>
//	arn:aws:elasticloadbalancing:<region>:<account>:listener/net/<lb name>/<lb digits>/<digits>
//	arn:aws:elasticloadbalancing:<region>:<account>:listener-rule/app/<lb name>/<lb digits>/<listener digits>/<digits>
//
// A listener's default rule (fakecloud's <listener>/default) ends in /default instead. Names
// never change, so an ARN is the same in every answer; a request's ARN is read back by its
// resource type and last segment, whatever its region and account.
//
// Certificates are fakecloud's (imported with its own ImportCertificate), named in ELBv2 by an
// ACM-shaped ARN whose resource is the fakecloud ID: arn:aws:acm:<region>:<account>:certificate/cert-<digits>.

const arnPrefix = "arn:aws:elasticloadbalancing:"

func (x *exchange) arnBase() string { return arnPrefix + x.region + ":" + creds.AccountID + ":" }

func digits(id string) string {
	_, d, _ := strings.Cut(id, "-")
	return d
}

// lbKind is the ARN's word for a load balancer type.
func lbKind(typ string) string {
	if typ == api.LoadBalancerTypeApplication {
		return "app/"
	}
	return "net/"
}

// listenerKind is the ARN's word for a listener's load balancer, told by its protocol.
func listenerKind(protocol string) string {
	if protocol == api.ProtocolHTTP || protocol == api.ProtocolHTTPS {
		return "app/"
	}
	return "net/"
}

func (x *exchange) loadBalancerARN(typ, name, id string) string {
	return x.arnBase() + "loadbalancer/" + lbKind(typ) + name + "/" + digits(id)
}

func (x *exchange) targetGroupARN(name, id string) string {
	return x.arnBase() + "targetgroup/" + name + "/" + digits(id)
}

func (x *exchange) listenerARN(protocol, lbName, lbID, id string) string {
	return x.arnBase() + "listener/" + listenerKind(protocol) + lbName + "/" + digits(lbID) + "/" + digits(id)
}

// ruleARN names a rule of an application load balancer's listener; a default rule's ARN ends
// in /default.
func (x *exchange) ruleARN(lbName, lbID, listenerID, id string) string {
	last := digits(id)
	if strings.HasSuffix(id, defaultRuleSuffix) {
		last = "default"
	}
	return x.arnBase() + "listener-rule/app/" + lbName + "/" + digits(lbID) + "/" + digits(listenerID) + "/" + last
}

// defaultRuleSuffix ends the fakecloud ID of a listener's default rule: <listener>/default.
const defaultRuleSuffix = "/default"

const acmPrefix = "arn:aws:acm:"

// certificateARN is the ACM-shaped ARN of a fakecloud certificate.
func (x *exchange) certificateARN(id string) string {
	return acmPrefix + x.region + ":" + creds.AccountID + ":certificate/" + id
}

// parseCertificateARN returns the fakecloud certificate ID an ACM-shaped ARN names.
func parseCertificateARN(arn string) (string, bool) {
	rest, ok := strings.CutPrefix(arn, acmPrefix)
	parts := strings.SplitN(rest, ":", 3)
	if !ok || len(parts) != 3 {
		return "", false
	}
	id, ok := strings.CutPrefix(parts[2], "certificate/cert-")
	if !ok || !isHex(id) {
		return "", false
	}
	return "cert-" + id, true
}

// arnKind is a resource type an ARN may name.
type arnKind struct {
	what      string   // for messages
	resources []string // the resource part's first segment(s)
	segments  int      // segments after it
	prefix    string   // the fakecloud ID's prefix
}

var (
	arnLoadBalancer = arnKind{"load balancer", []string{"loadbalancer/net/", "loadbalancer/app/"}, 2, "lb-"}
	arnTargetGroup  = arnKind{"target group", []string{"targetgroup/"}, 2, "tg-"}
	arnListener     = arnKind{"listener", []string{"listener/net/", "listener/app/"}, 3, "listener-"}
	arnRule         = arnKind{"rule", []string{"listener-rule/app/"}, 4, "rule-"}
)

// parseARN returns the fakecloud ID an ARN of one of the kinds names, or ValidationError.
func parseARN(arn string, kinds ...arnKind) (string, *api.Error) {
	rest, ok := strings.CutPrefix(arn, arnPrefix)
	parts := strings.SplitN(rest, ":", 3)
	if ok && len(parts) == 3 {
		for _, k := range kinds {
			if id, ok := k.parse(parts[2]); ok {
				return id, nil
			}
		}
	}
	what := kinds[0].what
	if len(kinds) > 1 {
		what = "load balancer or target group"
	}
	return "", api.Errorf(api.CodeValidationError, "'%s' is not a valid %s ARN", truncate(arn, 200), what)
}

// parse reads the fakecloud ID from an ARN's resource part.
func (k arnKind) parse(resource string) (string, bool) {
	for _, r := range k.resources {
		res, ok := strings.CutPrefix(resource, r)
		if !ok {
			continue
		}
		segs := strings.Split(res, "/")
		last := segs[len(segs)-1]
		if len(segs) != k.segments || strings.Contains(segs[0], ":") {
			continue
		}
		if k.prefix == "rule-" && last == "default" && isHex(segs[len(segs)-2]) {
			return "listener-" + segs[len(segs)-2] + defaultRuleSuffix, true
		}
		if isHex(last) {
			return k.prefix + last, true
		}
	}
	return "", false
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		default:
			return false
		}
	}
	return s != ""
}

package awsapi

import (
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/awsapi/creds"
)

// ELBv2 names resources by ARN where fakecloud uses IDs (lb-, tg-, listener- and 17 hexadecimal
// digits). The ARNs are AWS's shapes with the ID's digits in the ID's place:
//
//	arn:aws:elasticloadbalancing:<region>:<account>:loadbalancer/net/<name>/<digits>
//	arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<digits>
//	arn:aws:elasticloadbalancing:<region>:<account>:listener/net/<lb name>/<lb digits>/<digits>
//
// Names never change, so an ARN is the same in every answer; a request's ARN is read back by its
// resource type and last segment, whatever its region and account.

const arnPrefix = "arn:aws:elasticloadbalancing:"

func (x *exchange) arnBase() string { return arnPrefix + x.region + ":" + creds.AccountID + ":" }

func digits(id string) string {
	_, d, _ := strings.Cut(id, "-")
	return d
}

func (x *exchange) loadBalancerARN(name, id string) string {
	return x.arnBase() + "loadbalancer/net/" + name + "/" + digits(id)
}

func (x *exchange) targetGroupARN(name, id string) string {
	return x.arnBase() + "targetgroup/" + name + "/" + digits(id)
}

func (x *exchange) listenerARN(lbName, lbID, id string) string {
	return x.arnBase() + "listener/net/" + lbName + "/" + digits(lbID) + "/" + digits(id)
}

// arnKind is a resource type an ARN may name.
type arnKind struct {
	what     string // for messages
	resource string // the resource part's first segment(s)
	segments int    // segments after it
	prefix   string // the fakecloud ID's prefix
}

var (
	arnLoadBalancer = arnKind{"load balancer", "loadbalancer/net/", 2, "lb-"}
	arnTargetGroup  = arnKind{"target group", "targetgroup/", 2, "tg-"}
	arnListener     = arnKind{"listener", "listener/net/", 3, "listener-"}
)

// parseARN returns the fakecloud ID an ARN of one of the kinds names, or ValidationError.
func parseARN(arn string, kinds ...arnKind) (string, *api.Error) {
	rest, ok := strings.CutPrefix(arn, arnPrefix)
	parts := strings.SplitN(rest, ":", 3)
	if ok && len(parts) == 3 {
		for _, k := range kinds {
			if res, ok := strings.CutPrefix(parts[2], k.resource); ok {
				segs := strings.Split(res, "/")
				last := segs[len(segs)-1]
				if len(segs) == k.segments && last != "" && !strings.Contains(segs[0], ":") && isHex(last) {
					return k.prefix + last, nil
				}
			}
		}
	}
	what := kinds[0].what
	if len(kinds) > 1 {
		what = "load balancer or target group"
	}
	return "", api.Errorf(api.CodeValidationError, "'%s' is not a valid %s ARN", truncate(arn, 200), what)
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

package awsapi_test

import (
	"encoding/xml"
	"net/http"
	"strings"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// FuzzRequest sends arbitrary, correctly signed form bodies to the AWS front end (signed for
// ELBv2 when they name its version, else for EC2). Whatever the parameters, the answer is a
// well-formed XML document — an action's answer, or the service's error document with a code —
// and never an internal error.
func FuzzRequest(f *testing.F) {
	f.Add("Action=DescribeNetworkInterfaces&Version=2016-11-15&Filter.1.Name=attachment.instance-id&Filter.1.Value.1=i-1&MaxResults=5")
	f.Add("Action=AssignPrivateIpAddresses&Version=2016-11-15&NetworkInterfaceId=eni-1&SecondaryPrivateIpAddressCount=2&Ipv4Prefix.1=10.0.0.16/28")
	f.Add("Action=CreateTargetGroup&Version=2015-12-01&Name=t&Protocol=TCP&Port=80&VpcId=vpc-1&TargetType=ip&Tags.member.1.Key=k")
	f.Add("Action=CreateTargetGroup&Version=2015-12-01&Name=d&Protocol=TLS&Port=5432&VpcId=vpc-1&TargetType=ip&HealthCheckProtocol=TLS")
	f.Add("Action=CreateLoadBalancer&Version=2015-12-01&Name=a&Subnets.member.1=subnet-1")
	f.Add("Action=CreateRule&Version=2015-12-01&ListenerArn=arn:aws:elasticloadbalancing:us-east-1:000000000000:listener/app/a/00000000000000001/00000000000000002&Priority=5" +
		"&Conditions.member.1.Field=path-pattern&Conditions.member.1.PathPatternConfig.Values.member.1=/a/*%3F" +
		"&Conditions.member.2.Field=query-string&Conditions.member.2.QueryStringConfig.Values.member.1.Key=k&Conditions.member.2.QueryStringConfig.Values.member.1.Value=v*" +
		"&Actions.member.1.Type=forward&Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn=arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/t/00000000000000003&Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight=2")
	f.Add("Action=CreateListener&Version=2015-12-01&LoadBalancerArn=arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/a/00000000000000001&Protocol=HTTPS&Port=443" +
		"&Certificates.member.1.CertificateArn=arn:aws:acm:us-east-1:000000000000:certificate/cert-00000000000000004&SslPolicy=ELBSecurityPolicy-2016-08" +
		"&DefaultActions.member.1.Type=redirect&DefaultActions.member.1.RedirectConfig.Port=%23{port}&DefaultActions.member.1.RedirectConfig.StatusCode=HTTP_301")
	f.Add("Action=SetRulePriorities&Version=2015-12-01&RulePriorities.member.1.RuleArn=arn:aws:elasticloadbalancing:us-east-1:000000000000:listener-rule/app/a/00000000000000001/00000000000000002/default&RulePriorities.member.1.Priority=1")
	w := newWorld(f, servertest.Options{}, "m5.large", 1)
	key := servertest.AWSKey
	f.Fuzz(func(t *testing.T, body string) {
		// Real IDs make more calls get past "not found" into the actions.
		body = strings.NewReplacer("eni-1", w.instances[0].NetworkInterfaces[0].NetworkInterfaceID,
			"subnet-1", w.subnet.SubnetID, "vpc-1", w.subnet.VpcID).Replace(body)
		service, errRoot := "ec2", "Response"
		if strings.Contains(body, "Version=2015-12-01") {
			service, errRoot = "elasticloadbalancing", "ErrorResponse"
		}
		r := w.send(t, &key, service, body, timeZero)
		if r.status >= 500 {
			t.Fatalf("status %d for %q: %s", r.status, body, r.body)
		}
		var doc struct {
			XMLName   xml.Name
			Code      string `xml:"Errors>Error>Code"`
			ELBv2Code string `xml:"Error>Code"`
		}
		if err := xml.Unmarshal([]byte(r.body), &doc); err != nil {
			t.Fatalf("answer to %q is not XML: %v\n%s", body, err, r.body)
		}
		root := doc.XMLName.Local
		switch {
		case r.status == http.StatusOK && strings.HasSuffix(root, "Response") && root != "Response" && root != "ErrorResponse":
		case r.status != http.StatusOK && root == errRoot && doc.Code+doc.ELBv2Code != "":
		default:
			t.Fatalf("status %d with document <%s> (code %q%q) for %q", r.status, root, doc.Code, doc.ELBv2Code, body)
		}
	})
}

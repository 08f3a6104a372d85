package awsapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// debianAWS is where Debian's awscli package installs the aws command.
const debianAWS = "/usr/bin/aws"

// awsCLI finds Debian's aws CLI (FLATNET_AWS_CLI points elsewhere). It is a prerequisite
// (hack/prereqs.sh): its absence fails the test rather than skipping it.
func awsCLI(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FLATNET_AWS_CLI"); p != "" {
		return p
	}
	if _, err := os.Stat(debianAWS); err != nil {
		t.Fatalf("Debian's aws CLI (%s) is missing: apt-get install awscli (make prereqs installs it), or set FLATNET_AWS_CLI to an aws CLI", debianAWS)
	}
	return debianAWS
}

// cliResult is one run of the aws CLI.
type cliResult struct {
	stdout, stderr string
	exit           int
}

// aws runs the aws CLI against the world's endpoint with k's credentials in its environment,
// and nothing of the user's configuration.
func (w *world) aws(t *testing.T, k server.AWSKey, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	home := t.TempDir()
	full := append([]string{"--endpoint-url", w.URL, "--output", "json"}, args...)
	cmd := exec.CommandContext(ctx, awsCLI(t), full...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"AWS_ACCESS_KEY_ID=" + k.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + k.SecretAccessKey,
		"AWS_DEFAULT_REGION=" + region, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + home + "/config", "AWS_SHARED_CREDENTIALS_FILE=" + home + "/credentials",
		"AWS_PAGER=", "AWS_MAX_ATTEMPTS=1",
	}
	if k.SessionToken != "" {
		cmd.Env = append(cmd.Env, "AWS_SESSION_TOKEN="+k.SessionToken)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.exit = exit.ExitCode()
	case err != nil:
		t.Fatalf("aws %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// ok checks that the command succeeded and decodes its JSON output into out (nil: the command
// prints nothing).
func (r cliResult) ok(t *testing.T, out any) {
	t.Helper()
	if r.exit != 0 {
		t.Fatalf("aws exited %d: %s", r.exit, r.stderr)
	}
	if out == nil {
		return
	}
	if err := json.Unmarshal([]byte(r.stdout), out); err != nil {
		t.Fatalf("aws printed %q: %v", r.stdout, err)
	}
}

// refused checks that the command failed with the AWS error code.
func (r cliResult) refused(t *testing.T, code string) {
	t.Helper()
	if r.exit == 0 || !strings.Contains(r.stderr, "("+code+")") {
		t.Fatalf("aws exited %d with %q; want the error (%s)", r.exit, r.stderr, code)
	}
}

// TestAWSCLI drives fakecloud with Debian's aws CLI, a process that signs its requests.
func TestAWSCLI(t *testing.T) {
	w := newWorld(t, servertest.Options{}, "m5.large", 2)
	admin := servertest.AWSKey
	a, b := w.instances[0], w.instances[1]
	eniA := a.NetworkInterfaces[0].NetworkInterfaceID

	var described struct {
		NetworkInterfaces []struct {
			NetworkInterfaceID string `json:"NetworkInterfaceId"`
			PrivateIPAddresses []struct {
				PrivateIPAddress string `json:"PrivateIpAddress"`
				Primary          bool
			} `json:"PrivateIpAddresses"`
			Attachment struct {
				InstanceID  string `json:"InstanceId"`
				DeviceIndex int
			}
		}
	}
	w.aws(t, admin, "ec2", "describe-network-interfaces", "--filters", "Name=attachment.instance-id,Values="+a.InstanceID).ok(t, &described)
	if len(described.NetworkInterfaces) != 1 || described.NetworkInterfaces[0].NetworkInterfaceID != eniA || described.NetworkInterfaces[0].Attachment.InstanceID != a.InstanceID {
		t.Fatalf("describe-network-interfaces: %+v", described)
	}

	var assigned struct {
		NetworkInterfaceID         string `json:"NetworkInterfaceId"`
		AssignedPrivateIPAddresses []struct {
			PrivateIPAddress string `json:"PrivateIpAddress"`
		} `json:"AssignedPrivateIpAddresses"`
		AssignedIpv4Prefixes []struct{ Ipv4Prefix string }
	}
	w.aws(t, admin, "ec2", "assign-private-ip-addresses", "--network-interface-id", eniA, "--secondary-private-ip-address-count", "2").ok(t, &assigned)
	if assigned.NetworkInterfaceID != eniA || len(assigned.AssignedPrivateIPAddresses) != 2 {
		t.Fatalf("assign-private-ip-addresses: %+v", assigned)
	}
	w.aws(t, admin, "ec2", "assign-private-ip-addresses", "--network-interface-id", eniA, "--ipv4-prefix-count", "1").ok(t, &assigned)
	if len(assigned.AssignedIpv4Prefixes) != 1 {
		t.Fatalf("assign-private-ip-addresses --ipv4-prefix-count 1: %+v", assigned)
	}
	json := w.jsonENI(t, eniA)
	if len(json.PrivateIPAddresses) != 3 || len(json.Ipv4Prefixes) != 1 {
		t.Fatalf("the JSON API sees %d addresses and %d prefixes; want 3 and 1", len(json.PrivateIPAddresses), len(json.Ipv4Prefixes))
	}

	// The CLI pages by itself: five at a time, every interface in the end.
	for range 5 {
		if _, err := w.Admin.CreateNetworkInterface(context.Background(), &api.CreateNetworkInterfaceRequest{SubnetID: w.subnet.SubnetID}); err != nil {
			t.Fatal(err)
		}
	}
	w.aws(t, admin, "ec2", "describe-network-interfaces", "--page-size", "5").ok(t, &described)
	if len(described.NetworkInterfaces) != 7 {
		t.Fatalf("describe-network-interfaces --page-size 5: %d interfaces; want 7", len(described.NetworkInterfaces))
	}

	// An instance's own credentials, session token included: its interface, not another's.
	keyA := servertest.InstanceAWSKey(t, a)
	w.aws(t, keyA, "ec2", "assign-private-ip-addresses", "--network-interface-id", eniA, "--private-ip-addresses", "10.0.0.100").ok(t, &assigned)
	w.aws(t, servertest.InstanceAWSKey(t, b), "ec2", "assign-private-ip-addresses", "--network-interface-id", eniA, "--secondary-private-ip-address-count", "1").
		refused(t, api.CodeUnauthorizedOperation)

	bad := admin
	bad.SecretAccessKey = "not-" + bad.SecretAccessKey
	w.aws(t, bad, "ec2", "describe-network-interfaces").refused(t, api.CodeAuthFailure)
	noToken := keyA
	noToken.SessionToken = ""
	w.aws(t, noToken, "ec2", "describe-network-interfaces").refused(t, api.CodeAuthFailure)
}

// TestAWSCLIELBv2: the aws CLI's elbv2 commands against fakecloud's load balancers.
func TestAWSCLIELBv2(t *testing.T) {
	w := newWorld(t, servertest.Options{}, "m5.large", 2)
	ctx := context.Background()
	admin := servertest.AWSKey
	c := w.elb(admin)
	tg := must(c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{
		Name: aws.String("web-tg"), Protocol: elbtypes.ProtocolEnumTcp, Port: aws.Int32(80), VpcId: aws.String(w.subnet.VpcID), TargetType: elbtypes.TargetTypeEnumIp,
	})).of(t).TargetGroups[0]
	lb := must(c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{
		Name: aws.String("web"), Type: elbtypes.LoadBalancerTypeEnumNetwork, Subnets: []string{w.subnet.SubnetID},
	})).of(t).LoadBalancers[0]
	must(c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumTcp, Port: aws.Int32(80),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroupArn}}})).of(t)
	arn := aws.ToString(tg.TargetGroupArn)
	a, b := w.instances[0].PrivateIPAddress, w.instances[1].PrivateIPAddress

	w.aws(t, admin, "elbv2", "register-targets", "--target-group-arn", arn, "--targets", "Id="+a, "Id="+b+",Port=8080").ok(t, nil)
	if _, err := w.Admin.ReportTargetHealth(ctx, &api.ReportTargetHealthRequest{Reports: []api.TargetHealthReport{{TargetGroupID: groupID(arn), IP: a, Port: 80, State: api.TargetHealthHealthy}}}); err != nil {
		t.Fatal(err)
	}
	var health struct {
		TargetHealthDescriptions []struct {
			Target struct {
				ID   string `json:"Id"`
				Port int
			}
			TargetHealth struct{ State, Reason string }
		}
	}
	w.aws(t, admin, "elbv2", "describe-target-health", "--target-group-arn", arn).ok(t, &health)
	got := map[string]string{}
	for _, d := range health.TargetHealthDescriptions {
		got[d.Target.ID+":"+strconv.Itoa(d.Target.Port)] = d.TargetHealth.State + "/" + d.TargetHealth.Reason
	}
	if want := map[string]string{a + ":80": "healthy/", b + ":8080": "initial/Elb.RegistrationInProgress"}; !maps.Equal(got, want) {
		t.Fatalf("describe-target-health: %v; want %v", got, want)
	}

	var lbs struct {
		LoadBalancers []struct {
			LoadBalancerArn string
			State           struct{ Code string }
		}
	}
	w.aws(t, admin, "elbv2", "describe-load-balancers", "--names", "web").ok(t, &lbs)
	if len(lbs.LoadBalancers) != 1 || lbs.LoadBalancers[0].LoadBalancerArn != aws.ToString(lb.LoadBalancerArn) || lbs.LoadBalancers[0].State.Code != "active" {
		t.Fatalf("describe-load-balancers: %+v", lbs)
	}
	w.aws(t, servertest.InstanceAWSKey(t, w.instances[0]), "elbv2", "describe-target-health", "--target-group-arn", arn).refused(t, "AccessDenied")
	bad := admin
	bad.SecretAccessKey = "not-" + bad.SecretAccessKey
	w.aws(t, bad, "elbv2", "describe-target-health", "--target-group-arn", arn).refused(t, "SignatureDoesNotMatch")
}

// TestAWSCLIELBv2Rules: the aws CLI creates a rule with its JSON conditions and reads the
// listener's rules back, the default rule last.
func TestAWSCLIELBv2Rules(t *testing.T) {
	awsCLI(t)
	a := newALB(t)
	admin := servertest.AWSKey
	var created struct {
		Rules []struct{ RuleArn, Priority string }
	}
	a.w.aws(t, admin, "elbv2", "create-rule", "--listener-arn", a.listener, "--priority", "7",
		"--conditions", `[{"Field":"path-pattern","PathPatternConfig":{"Values":["/img/*"]}},{"Field":"query-string","QueryStringConfig":{"Values":[{"Key":"v","Value":"1"}]}}]`,
		"--actions", `[{"Type":"forward","ForwardConfig":{"TargetGroups":[{"TargetGroupArn":"`+a.blue+`","Weight":3},{"TargetGroupArn":"`+a.green+`","Weight":1}]}}]`).ok(t, &created)
	var rules struct {
		Rules []struct {
			RuleArn, Priority string
			IsDefault         bool
			Conditions        []struct {
				Field             string
				PathPatternConfig *struct{ Values []string }
			}
			Actions []struct {
				Type          string
				ForwardConfig struct {
					TargetGroups []struct {
						TargetGroupArn string
						Weight         int
					}
				}
			}
		}
	}
	a.w.aws(t, admin, "elbv2", "describe-rules", "--listener-arn", a.listener).ok(t, &rules)
	if len(created.Rules) != 1 || len(rules.Rules) != 2 || rules.Rules[0].RuleArn != created.Rules[0].RuleArn || rules.Rules[0].Priority != "7" ||
		len(rules.Rules[0].Conditions) != 2 || rules.Rules[0].Conditions[0].PathPatternConfig == nil || rules.Rules[0].Conditions[0].PathPatternConfig.Values[0] != "/img/*" ||
		rules.Rules[0].Actions[0].ForwardConfig.TargetGroups[0].Weight != 3 || rules.Rules[1].Priority != "default" || !rules.Rules[1].IsDefault {
		t.Fatalf("describe-rules: %+v (created %+v)", rules, created)
	}
	a.w.aws(t, admin, "elbv2", "set-rule-priorities", "--rule-priorities", "RuleArn="+created.Rules[0].RuleArn+",Priority=8").ok(t, nil)
	a.w.aws(t, admin, "elbv2", "create-rule", "--listener-arn", a.listener, "--priority", "8",
		"--conditions", `[{"Field":"host-header","Values":["x.example.com"]}]`, "--actions", `[{"Type":"forward","TargetGroupArn":"`+a.blue+`"}]`).refused(t, "PriorityInUse")
}

// TestAWSCLIACM drives fakecloud's ACM front end with Debian's aws CLI (botocore's JSON
// protocol): import from files, list (ECDSA only when asked, as ACM), tags, delete, and a
// refusal in ACM's terms.
func TestAWSCLIACM(t *testing.T) {
	w := newWorld(t, servertest.Options{}, "m5.large", 1)
	admin := servertest.AWSKey
	dir := t.TempDir()
	certPEM, keyPEM := selfSignedPEM(t, "cli.example.com")
	for name, body := range map[string]string{"cert.pem": certPEM, "key.pem": keyPEM} {
		if err := os.WriteFile(dir+"/"+name, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var imported struct{ CertificateArn string }
	w.aws(t, admin, "acm", "import-certificate", "--certificate", "fileb://"+dir+"/cert.pem", "--private-key", "fileb://"+dir+"/key.pem",
		"--tags", "Key=owner,Value=cli").ok(t, &imported)
	if !strings.HasPrefix(imported.CertificateArn, "arn:aws:acm:"+region+":000000000000:certificate/cert-") {
		t.Fatalf("import-certificate: %+v", imported)
	}
	var listed struct {
		CertificateSummaryList []struct {
			CertificateArn, DomainName, KeyAlgorithm, Status string
			InUse                                            bool
		}
	}
	w.aws(t, admin, "acm", "list-certificates").ok(t, &listed)
	if len(listed.CertificateSummaryList) != 0 {
		t.Errorf("ECDSA listed without asking: %+v", listed)
	}
	w.aws(t, admin, "acm", "list-certificates", "--includes", "keyTypes=EC_prime256v1").ok(t, &listed)
	if s := listed.CertificateSummaryList; len(s) != 1 || s[0].CertificateArn != imported.CertificateArn || s[0].DomainName != "cli.example.com" ||
		s[0].KeyAlgorithm != "EC_prime256v1" || s[0].Status != "ISSUED" || s[0].InUse {
		t.Fatalf("list-certificates: %+v", listed)
	}
	var tags struct{ Tags []struct{ Key, Value string } }
	w.aws(t, admin, "acm", "list-tags-for-certificate", "--certificate-arn", imported.CertificateArn).ok(t, &tags)
	if len(tags.Tags) != 1 || tags.Tags[0].Key != "owner" || tags.Tags[0].Value != "cli" {
		t.Errorf("list-tags-for-certificate: %+v", tags)
	}
	w.aws(t, admin, "acm", "delete-certificate", "--certificate-arn", imported.CertificateArn).ok(t, nil)
	w.aws(t, admin, "acm", "delete-certificate", "--certificate-arn", imported.CertificateArn).refused(t, "ResourceNotFoundException")
	w.aws(t, admin, "acm", "describe-certificate", "--certificate-arn", imported.CertificateArn).refused(t, "UnknownOperationException")
}

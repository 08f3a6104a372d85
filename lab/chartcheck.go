package lab

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// CheckAddresses checks every node's addresses three ways: the cloud's secondary addresses of
// the node's interfaces are exactly ipamd's; ipamd's assigned addresses are exactly the
// addresses of the node's running pods (no leak); and no address belongs to two pods (no
// duplicate). Pods on their way out may still hold theirs: callers retry until it holds.
func (l *Lab) CheckAddresses(ctx context.Context, kc kubernetes.Interface) error {
	pods, err := kc.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	owner := map[string]string{} // pod IP -> pod
	podIPs := map[string][]string{}
	var problems []string
	for _, p := range pods.Items {
		if p.Spec.HostNetwork || p.Status.PodIP == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		name := p.Namespace + "/" + p.Name
		if other, dup := owner[p.Status.PodIP]; dup {
			problems = append(problems, fmt.Sprintf("%s is the address of %s and of %s", p.Status.PodIP, other, name))
		}
		owner[p.Status.PodIP] = name
		podIPs[p.Spec.NodeName] = append(podIPs[p.Spec.NodeName], p.Status.PodIP)
	}
	for _, p := range l.State().Pods { // the lab's own pods (flatnet-lab pod add)
		podIPs[p.Node] = append(podIPs[p.Node], p.IP)
	}
	for _, n := range l.State().Nodes {
		r, err := l.cloud.DescribeNetworkInterfaces(ctx, &api.DescribeNetworkInterfacesRequest{
			Filters: []api.Filter{{Name: "attachment.instance-id", Values: []string{n.InstanceID}}}})
		if err != nil {
			return fmt.Errorf("%s: the cloud's interfaces: %w", n.Name, err)
		}
		var cloud []string
		for _, ni := range r.NetworkInterfaces {
			for _, a := range ni.PrivateIPAddresses {
				if !a.Primary {
					cloud = append(cloud, a.PrivateIPAddress)
				}
			}
		}
		addrs, err := l.Addresses(ctx, n.Name)
		if err != nil {
			return fmt.Errorf("%s: ipamd's addresses: %w", n.Name, err)
		}
		var held, assigned []string
		for _, a := range addrs {
			held = append(held, a.IP)
			if a.State == "assigned" {
				assigned = append(assigned, a.IP)
			}
		}
		if d := setDiff(cloud, held); d != "" {
			problems = append(problems, fmt.Sprintf("%s: the cloud's addresses and ipamd's differ: %s", n.Name, d))
		}
		if d := setDiff(assigned, podIPs[n.Name]); d != "" {
			problems = append(problems, fmt.Sprintf("%s: ipamd's assigned addresses and the pods' differ: %s", n.Name, d))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// setDiff describes how two sets of strings differ ("" when equal).
func setDiff(a, b []string) string {
	var onlyA, onlyB []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			onlyA = append(onlyA, x)
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			onlyB = append(onlyB, x)
		}
	}
	if len(onlyA)+len(onlyB) == 0 {
		return ""
	}
	sort.Strings(onlyA)
	sort.Strings(onlyB)
	return fmt.Sprintf("only in the first %v, only in the second %v", onlyA, onlyB)
}

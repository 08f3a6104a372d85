package lab

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// BenchmarkLBPodReadyToFirstRequest (issue 8, acceptance 5): a pod is added to a Deployment
// behind a LoadBalancer Service, with the load balancer's readiness gate; from the moment the
// pod is seen Ready, requests go through the VIP from the internet namespace until one is
// answered by the new pod. With the gate, Ready means healthy in the target group, so the
// figure is how soon traffic actually arrives once Kubernetes says the pod can take it. Also
// reported: pod created to Ready (scheduling, CNI, the container, two health checks 5 s apart).
func BenchmarkLBPodReadyToFirstRequest(b *testing.B) {
	dir := os.Getenv(K8sBinDirEnv)
	if dir == "" {
		b.Fatalf("%s is not set: run make k8s-bins (make bench exports it)", K8sBinDirEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cfg := benchConfig(b, "flbl-", 7488)
	cfg.Kubernetes, cfg.K8sBinDir = true, dir
	cfg.APIServerListen = benchConfig(b, "flbl-", 6449).Listen
	l := upBench(ctx, b, cfg)
	defer func() { _ = Down(cfg.Dir, cfg.Prefix, os.Stderr) }()
	kc, err := l.Kube()
	if err != nil {
		b.Fatal(err)
	}
	replicas := int32(2)
	if _, err := kc.AppsV1().Deployments(demoNamespace).Create(ctx, gatedDeployment("bench", replicas), metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := kc.CoreV1().Services(demoNamespace).Create(ctx, EchoLBService(demoNamespace, "bench"), metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	vip, err := WaitLBIngress(ctx, kc, demoNamespace, "bench", time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	pods, err := WaitPodsReady(ctx, kc, demoNamespace, "app=bench", int(replicas), 3*time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	var toFirst, toReady []time.Duration
	for b.Loop() {
		known := map[string]bool{}
		for _, p := range pods {
			known[p.Name] = true
		}
		replicas++
		created := time.Now()
		patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)
		if _, err := kc.AppsV1().Deployments(demoNamespace).Patch(ctx, "bench", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			b.Fatal(err)
		}
		var fresh corev1.Pod
		for {
			list, err := kc.CoreV1().Pods(demoNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=bench"})
			if err != nil {
				b.Fatal(err)
			}
			i := slices.IndexFunc(list.Items, func(p corev1.Pod) bool { return !known[p.Name] && PodReady(&p) })
			if i >= 0 {
				fresh = list.Items[i]
				break
			}
			if time.Since(created) > 2*time.Minute {
				b.Fatal("the new pod was not Ready within 2 minutes")
			}
			time.Sleep(20 * time.Millisecond)
		}
		ready := time.Now()
		toReady = append(toReady, ready.Sub(created))
		for {
			e, err := EchoFrom(ctx, l.InternetNetns(), vip, LBPort)
			if err != nil {
				b.Fatalf("through the VIP: %v", err)
			}
			if e.Pod == fresh.Name {
				break
			}
			if time.Since(ready) > time.Minute {
				b.Fatalf("%s Ready for a minute and never answered through the VIP", fresh.Name)
			}
		}
		toFirst = append(toFirst, time.Since(ready))
		pods = append(pods, fresh)
	}
	slices.Sort(toFirst)
	slices.Sort(toReady)
	b.ReportMetric(float64(toFirst[len(toFirst)/2].Microseconds())/1000, "ready-to-first-ms-p50")
	b.ReportMetric(float64(toFirst[len(toFirst)-1].Microseconds())/1000, "ready-to-first-ms-max")
	b.ReportMetric(toReady[len(toReady)/2].Seconds(), "created-to-ready-s-p50")
}

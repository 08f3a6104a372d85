package nodeagent

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestProgram(t *testing.T) {
	for _, tc := range []struct {
		image, want, errPart string
	}{
		{image: "flatnet.io/echo", want: programEcho},
		{image: "flatnet.io/echo:1.0", want: programEcho},
		{image: "flatnet.io/echo@sha256:abc", want: programEcho},
		{image: "flatnet.io/generic:latest", want: programGeneric},
		{image: "flatnet.io/echo:", errPart: "empty tag"},
		{image: "nginx:1.27", errPart: `image "nginx:1.27" is not one the node agent can run`},
		{image: "docker.io/flatnet.io/echo", errPart: "flatnet.io/echo[:tag]"},
		{image: "flatnet.io/echoes", errPart: "not one"},
		{image: "", errPart: "not one"},
	} {
		got, err := program(tc.image)
		if tc.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Errorf("program(%q) = %q, %v; want an error with %q", tc.image, got, err, tc.errPart)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("program(%q) = %q, %v; want %q", tc.image, got, err, tc.want)
		}
	}
}

func TestParseStat(t *testing.T) {
	fields := " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21"
	for _, tc := range []struct {
		name, stat string
		want       uint64
		errPart    string
	}{
		{name: "plain", stat: "123 (sleep)" + fields, want: 424242},
		{name: "spaces and parentheses in the command", stat: "123 (a b) (c))" + fields, want: 424242},
		{name: "zombie", stat: "123 (x) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 5", errPart: "exited"},
		{name: "no parenthesis", stat: "123 sleep S 1", errPart: "no ')'"},
		{name: "short", stat: "123 (x) S 1 2", errPart: "fields"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat(tc.stat)
			if tc.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errPart) {
					t.Fatalf("got %d, %v; want an error with %q", got, err, tc.errPart)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestStoreRoundTrip(t *testing.T) {
	st, err := newStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := &sandboxRecord{
		ID: "abc", Netns: "fl-p-abc", PodUID: "uid-1", Namespace: "default", Name: "web",
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Ready: true, IPs: []string{"10.0.0.9"},
		Containers: []containerRecord{{Name: "echo", ID: "flatnet://1", PID: 42, StartTime: 7, RestartCount: 2}},
	}
	if err := st.save(r); err != nil {
		t.Fatal(err)
	}
	got, err := st.load()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*sandboxRecord{r}, got); diff != "" {
		t.Errorf("load after save (-want +got):\n%s", diff)
	}
	if err := st.remove("abc"); err != nil {
		t.Fatal(err)
	}
	if got, err := st.load(); err != nil || len(got) != 0 {
		t.Errorf("after remove: %v, %v", got, err)
	}
}

func TestParseRecordRejects(t *testing.T) {
	for _, in := range []string{`{}`, `{"id":"a"}`, `{"id":"../x","netns":"n"}`, `{"id":"a","netns":"a/b"}`, `{"id":"a","netns":".."}`, `[`} {
		if _, err := parseRecord([]byte(in)); err == nil {
			t.Errorf("parseRecord(%s) accepted it", in)
		}
	}
}

func TestUnmetGates(t *testing.T) {
	pod := &corev1.Pod{
		Spec: corev1.PodSpec{ReadinessGates: []corev1.PodReadinessGate{{ConditionType: "a"}, {ConditionType: "b"}}},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{
			{Type: "a", Status: corev1.ConditionTrue}, {Type: "b", Status: corev1.ConditionFalse},
		}},
	}
	if got := unmetGates(pod); !strings.Contains(got, `"b" is not "True"`) || strings.Contains(got, `"a"`) {
		t.Errorf("unmetGates = %q", got)
	}
	pod.Status.Conditions[1].Status = corev1.ConditionTrue
	if got := unmetGates(pod); got != "" {
		t.Errorf("all gates True, unmetGates = %q", got)
	}
	pod.Status.Conditions = pod.Status.Conditions[:1]
	if got := unmetGates(pod); !strings.Contains(got, `gate "b" does not exist`) {
		t.Errorf("missing condition, unmetGates = %q", got)
	}
}

func TestConfigValidate(t *testing.T) {
	c := Config{CPU: "x", Memory: "8Gi", EphemeralStorage: "1Gi", MaxPods: -1, LeaseDuration: time.Second, NetnsPrefix: "a/b"}
	err := c.validate()
	for _, part := range []string{"--kubeconfig is required", "--node-name is required", `--cpu "x"`, "--max-pods -1", "--lease-duration 1s", "--netns-prefix"} {
		if err == nil || !strings.Contains(err.Error(), part) {
			t.Errorf("validate() = %v; want it to say %q", err, part)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add("123 (sleep) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21")
	f.Add("1 ((()) Z")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseStat(s) // must not panic
	})
}

func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(`{"id":"abc","netns":"fl-p-abc","podUID":"u","ready":true,"ips":["10.0.0.1"],"containers":[{"name":"c","pid":1}]}`))
	f.Add([]byte(`{"id":"a/b"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRecord(b)
		if err == nil && (!fileName(r.ID) || !fileName(r.Netns)) {
			t.Errorf("accepted a record that names paths outside its directory: %+v", r)
		}
	})
}

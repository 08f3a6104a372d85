package nodeagent

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestContainerLogsHandler: the API answers the user the SubjectAccessReview allows with the
// container's log, and refuses, with the status the API server passes on, a client without a
// certificate, a denied user, an unknown pod, a missing previous log and a bad parameter.
func TestContainerLogsHandler(t *testing.T) {
	dir := t.TempDir()
	st, err := newStore(filepath.Join(dir, "sandboxes"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.save(&sandboxRecord{ID: "sb1", Netns: "ns1", Namespace: "default", Name: "web", Created: t0}); err != nil {
		t.Fatal(err)
	}
	kube := fake.NewClientset()
	var asked *authorizationv1.ResourceAttributes
	kube.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		asked = sar.Spec.ResourceAttributes
		sar.Status.Allowed = sar.Spec.User == "kube-apiserver-kubelet-client"
		if !sar.Status.Allowed {
			sar.Status.Reason = "no RBAC policy matched"
		}
		return true, sar, nil
	})
	a := &Agent{cfg: Config{NodeName: "node-1"}, log: slog.New(slog.DiscardHandler), kube: kube, store: st, logDir: dir}
	writeLog(t, a.containerLog("sb1", "main"), 1<<20, "stdout", "hello\nworld\n", t0)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", a.containerLogs)

	get := func(user, path string) (int, string) {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if user != "" {
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{CommonName: user, Organization: []string{"system:masters"}}}}}
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		body, _ := io.ReadAll(w.Result().Body)
		return w.Code, string(body)
	}
	const admin = "kube-apiserver-kubelet-client"
	if code, body := get(admin, "/containerLogs/default/web/main?tailLines=1&stream=All"); code != http.StatusOK || body != "world\n" {
		t.Errorf("allowed: %d %q, want 200 and the last line", code, body)
	}
	if asked == nil || asked.Verb != "get" || asked.Resource != "nodes" || asked.Subresource != "proxy" || asked.Name != "node-1" {
		t.Errorf("SubjectAccessReview asked for %+v, want get nodes/proxy node-1", asked)
	}
	for _, tc := range []struct {
		user, path string
		code       int
		part       string
	}{
		{"", "/containerLogs/default/web/main", http.StatusUnauthorized, "client certificate"},
		{"alice", "/containerLogs/default/web/main", http.StatusForbidden, "no RBAC policy matched"},
		{admin, "/containerLogs/default/api/main", http.StatusNotFound, "no sandbox"},
		{admin, "/containerLogs/default/web/main?previous=true", http.StatusBadRequest, "previous terminated container"},
		{admin, "/containerLogs/default/web/main?pretty=true", http.StatusBadRequest, "pretty is not supported"},
		{admin, "/containerLogs/default/web/main?tailLines=-3", http.StatusBadRequest, "tailLines"},
	} {
		if code, body := get(tc.user, tc.path); code != tc.code || !strings.Contains(body, tc.part) {
			t.Errorf("%s as %q: %d %q; want %d with %q", tc.path, tc.user, code, body, tc.code, tc.part)
		}
	}
}

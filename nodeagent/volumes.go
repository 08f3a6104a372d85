package nodeagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Volumes: the agent prepares a pod's volumes on the node's filesystem and binds them into the
// containers that mount them (containers of images run from an OCI layout; see Launch).
//
//   - hostPath: the path under the node's root directory (--root-dir), so that nodes sharing one
//     filesystem in the lab do not collide; its type is checked (DirectoryOrCreate creates it).
//   - emptyDir: a directory of the pod's, removed with the sandbox.
//   - configMap, secret, downwardAPI and projected (serviceAccountToken, configMap, secret,
//     downwardAPI): files written as the kubelet writes them, every key a symlink through
//     "..data" to a timestamped directory, so that a refresh swaps all files at once; refreshed
//     every volumeRefresh, the token when 80% of its life has passed.
//
// Anything else is refused with the reason, before any container starts.
const volumeRefresh = time.Minute

// podVolume is a prepared volume: where it is on the node.
type podVolume struct {
	path string
	// generated volumes are rewritten on refresh; tokenExpiry is the earliest expiry of a token
	// written in them.
	generated   bool
	tokenExpiry time.Time
	tokenIssued time.Time
}

// volumeDir is where the agent keeps a pod's own volumes (emptyDir and generated files).
func (a *Agent) volumeDir(uid string) string {
	return filepath.Join(a.cfg.StateDir, "pods", uid, "volumes")
}

// hostPath maps a hostPath volume's path to the node's filesystem.
func (a *Agent) hostPath(p string) string {
	if a.cfg.RootDir == "" || a.cfg.RootDir == "/" {
		return filepath.Clean(p)
	}
	return filepath.Join(a.cfg.RootDir, filepath.Clean("/"+p))
}

// checkVolumes refuses a pod whose volumes the agent cannot provide, naming each.
func checkVolumes(pod *corev1.Pod) error {
	var errs []error
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.HostPath != nil, v.EmptyDir != nil, v.ConfigMap != nil, v.Secret != nil, v.DownwardAPI != nil:
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ClusterTrustBundle != nil || s.PodCertificate != nil {
					errs = append(errs, fmt.Errorf("volume %s: projected clusterTrustBundle and podCertificate sources are not supported by the node agent", v.Name))
				}
			}
		default:
			errs = append(errs, fmt.Errorf("volume %s: its type is not supported by the node agent (it provides hostPath, emptyDir, configMap, secret, downwardAPI and projected volumes)", v.Name))
		}
	}
	return errors.Join(errs...)
}

// prepareVolumes makes every volume of the pod ready on the node (or refreshes the generated
// ones when due) and returns them by name.
func (w *podWorker) prepareVolumes(ctx context.Context, pod *corev1.Pod) (map[string]*podVolume, error) {
	if w.volumes == nil {
		w.volumes = map[string]*podVolume{}
	}
	now := time.Now()
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		pv := w.volumes[v.Name]
		if pv != nil && !pv.generated {
			continue
		}
		if pv != nil && now.Sub(w.volumesAt) < volumeRefresh && !tokenDue(pv, now) {
			continue
		}
		next, err := w.a.prepareVolume(ctx, pod, v, w.ips)
		if err != nil {
			return nil, err
		}
		w.volumes[v.Name] = next
	}
	if now.Sub(w.volumesAt) >= volumeRefresh {
		w.volumesAt = now
	}
	return w.volumes, nil
}

func tokenDue(pv *podVolume, now time.Time) bool {
	if pv.tokenExpiry.IsZero() {
		return false
	}
	life := pv.tokenExpiry.Sub(pv.tokenIssued)
	return now.After(pv.tokenIssued.Add(life * 8 / 10))
}

func (a *Agent) prepareVolume(ctx context.Context, pod *corev1.Pod, v *corev1.Volume, ips []string) (*podVolume, error) {
	own := filepath.Join(a.volumeDir(string(pod.UID)), v.Name)
	switch {
	case v.HostPath != nil:
		p := a.hostPath(v.HostPath.Path)
		if err := checkHostPath(p, v.HostPath.Type); err != nil {
			return nil, fmt.Errorf("volume %s: hostPath %s: %w", v.Name, v.HostPath.Path, err)
		}
		return &podVolume{path: p}, nil
	case v.EmptyDir != nil:
		if err := os.MkdirAll(own, 0o777); err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		if err := os.Chmod(own, 0o777); err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		return &podVolume{path: own}, applyFSGroup(own, fsGroup(pod))
	}
	files := map[string]volumeFile{}
	pv := &podVolume{path: own, generated: true}
	var err error
	switch {
	case v.ConfigMap != nil:
		err = a.configMapFiles(ctx, pod.Namespace, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.DefaultMode, v.ConfigMap.Optional, files)
	case v.Secret != nil:
		err = a.secretFiles(ctx, pod.Namespace, v.Secret.SecretName, v.Secret.Items, v.Secret.DefaultMode, v.Secret.Optional, files)
	case v.DownwardAPI != nil:
		err = downwardFiles(pod, v.DownwardAPI.Items, v.DownwardAPI.DefaultMode, files)
	case v.Projected != nil:
		for _, s := range v.Projected.Sources {
			switch {
			case s.ServiceAccountToken != nil:
				err = a.tokenFile(ctx, pod, s.ServiceAccountToken, v.Projected.DefaultMode, files, pv)
			case s.ConfigMap != nil:
				err = a.configMapFiles(ctx, pod.Namespace, s.ConfigMap.Name, s.ConfigMap.Items, v.Projected.DefaultMode, s.ConfigMap.Optional, files)
			case s.Secret != nil:
				err = a.secretFiles(ctx, pod.Namespace, s.Secret.Name, s.Secret.Items, v.Projected.DefaultMode, s.Secret.Optional, files)
			case s.DownwardAPI != nil:
				err = downwardFiles(pod, s.DownwardAPI.Items, v.Projected.DefaultMode, files)
			default:
				err = errors.New("a projected source the node agent does not support")
			}
			if err != nil {
				break
			}
		}
	default:
		return nil, checkVolumes(&corev1.Pod{Spec: corev1.PodSpec{Volumes: []corev1.Volume{*v}}})
	}
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", v.Name, err)
	}
	if err := writeAtomicDir(own, files, fsGroup(pod)); err != nil {
		return nil, fmt.Errorf("volume %s: %w", v.Name, err)
	}
	return pv, nil
}

// unchanged: the volume's current generation holds exactly files, with their modes.
func unchanged(dir string, files map[string]volumeFile, gid int) bool {
	cur := filepath.Join(dir, "..data")
	if _, err := os.Stat(cur); err != nil {
		return false
	}
	n := 0
	err := filepath.WalkDir(cur+"/", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		rel, err := filepath.Rel(cur, p)
		if err != nil {
			return err
		}
		f, ok := files[rel]
		fi, ierr := d.Info()
		want := f.mode.Perm()
		if gid >= 0 {
			want |= (want & 0o600) >> 3 // applyFSGroup's
		}
		if !ok || ierr != nil || fi.Mode().Perm() != want {
			return errChanged
		}
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(b, f.data) {
			return errChanged
		}
		return nil
	})
	return err == nil && n == len(files)
}

var errChanged = errors.New("changed")

// fsGroup is the pod's fsGroup, -1 when it has none.
func fsGroup(pod *corev1.Pod) int {
	if sc := pod.Spec.SecurityContext; sc != nil && sc.FSGroup != nil {
		return int(*sc.FSGroup)
	}
	return -1
}

// applyFSGroup gives the pod's fsGroup the files of one of its own volumes, as the kubelet
// does: the group owns every file and directory (directories setgid, so new files inherit
// it), and the group may read what the owner may read, write what the owner may write (a
// Secret's 0440 stays 0440: the group reads it, nobody writes).
func applyFSGroup(dir string, gid int) error {
	if gid < 0 {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, -1, gid); err != nil {
			return err
		}
		if d.Type()&os.ModeSymlink != 0 {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		m := fi.Mode()
		perm := m.Perm() | (m.Perm()&0o600)>>3
		if d.IsDir() {
			return os.Chmod(p, perm|0o050|os.ModeSetgid)
		}
		return os.Chmod(p, perm)
	})
}

// checkHostPath applies the hostPath type, as the kubelet does.
func checkHostPath(p string, t *corev1.HostPathType) error {
	typ := corev1.HostPathUnset
	if t != nil {
		typ = *t
	}
	fi, err := os.Stat(p)
	switch typ {
	case corev1.HostPathUnset:
		return nil
	case corev1.HostPathDirectoryOrCreate:
		if os.IsNotExist(err) {
			return os.MkdirAll(p, 0o755)
		}
		if err == nil && !fi.IsDir() {
			return errors.New("exists and is not a directory")
		}
		return err
	case corev1.HostPathFileOrCreate:
		if os.IsNotExist(err) {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_RDONLY, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
		if err == nil && fi.IsDir() {
			return errors.New("exists and is a directory, want a file")
		}
		return err
	}
	if err != nil {
		return err
	}
	want := map[corev1.HostPathType]func(os.FileMode) bool{
		corev1.HostPathDirectory: os.FileMode.IsDir,
		corev1.HostPathFile:      os.FileMode.IsRegular,
		corev1.HostPathSocket:    func(m os.FileMode) bool { return m&os.ModeSocket != 0 },
		corev1.HostPathCharDev:   func(m os.FileMode) bool { return m&os.ModeCharDevice != 0 },
		corev1.HostPathBlockDev:  func(m os.FileMode) bool { return m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0 },
	}[typ]
	if want == nil {
		return fmt.Errorf("hostPath type %q is not one Kubernetes defines", typ)
	}
	if !want(fi.Mode()) {
		return fmt.Errorf("is not a %s", typ)
	}
	return nil
}

// volumeFile is one file of a generated volume.
type volumeFile struct {
	data []byte
	mode os.FileMode
}

func fileMode(item *int32, def *int32, fallback os.FileMode) os.FileMode {
	switch {
	case item != nil:
		return os.FileMode(*item) & 0o777
	case def != nil:
		return os.FileMode(*def) & 0o777
	}
	return fallback
}

// addFile adds path (relative, no "..") to files.
func addFile(files map[string]volumeFile, path string, data []byte, mode os.FileMode) error {
	clean := filepath.Clean(path)
	if path == "" || filepath.IsAbs(path) || clean == ".." || strings.HasPrefix(clean, "../") || strings.HasPrefix(clean, "..") {
		return fmt.Errorf("path %q must be relative and must not start with \"..\"", path)
	}
	files[clean] = volumeFile{data: data, mode: mode}
	return nil
}

func keyFiles(kind, name string, data map[string][]byte, items []corev1.KeyToPath, def *int32, files map[string]volumeFile) error {
	if len(items) == 0 {
		for k, v := range data {
			if err := addFile(files, k, v, fileMode(nil, def, 0o644)); err != nil {
				return err
			}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("%s %s has no key %q", kind, name, it.Key)
		}
		if err := addFile(files, it.Path, v, fileMode(it.Mode, def, 0o644)); err != nil {
			return err
		}
	}
	return nil
}

func (a *Agent) configMapFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, def *int32, optional *bool, files map[string]volumeFile) error {
	cm, err := a.kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && ptr.Deref(optional, false) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("configMap %s: %w", name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyFiles("configMap", name, data, items, def, files)
}

func (a *Agent) secretFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, def *int32, optional *bool, files map[string]volumeFile) error {
	s, err := a.kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && ptr.Deref(optional, false) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("secret %s: %w", name, err)
	}
	return keyFiles("secret", name, s.Data, items, def, files)
}

func downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, def *int32, files map[string]volumeFile) error {
	for _, it := range items {
		if it.FieldRef == nil {
			return fmt.Errorf("downwardAPI %s: only fieldRef is supported by the node agent (no resourceFieldRef: it runs no cgroups)", it.Path)
		}
		var v string
		switch it.FieldRef.FieldPath {
		case "metadata.name":
			v = pod.Name
		case "metadata.namespace":
			v = pod.Namespace
		case "metadata.uid":
			v = string(pod.UID)
		case "metadata.labels":
			v = formatMap(pod.Labels)
		case "metadata.annotations":
			v = formatMap(pod.Annotations)
		default:
			return fmt.Errorf("downwardAPI %s: fieldRef %q is not supported by the node agent (metadata.name, namespace, uid, labels, annotations)", it.Path, it.FieldRef.FieldPath)
		}
		if err := addFile(files, it.Path, []byte(v), fileMode(it.Mode, def, 0o644)); err != nil {
			return err
		}
	}
	return nil
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, strconv.Quote(m[k]))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// tokenFile asks the API server for a token of the pod's service account, bound to the pod,
// as the kubelet does (the Node authorizer lets a node ask only for the pods bound to it).
func (a *Agent) tokenFile(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection, def *int32, files map[string]volumeFile, pv *podVolume) error {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	exp := ptr.Deref(src.ExpirationSeconds, 3600)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &exp,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	tr, err := a.kube.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("token of service account %s: %w", sa, err)
	}
	issued := time.Now()
	if pv.tokenExpiry.IsZero() || tr.Status.ExpirationTimestamp.Time.Before(pv.tokenExpiry) {
		pv.tokenExpiry, pv.tokenIssued = tr.Status.ExpirationTimestamp.Time, issued
	}
	return addFile(files, src.Path, []byte(tr.Status.Token), fileMode(nil, def, 0o600))
}

// writeAtomicDir writes files into dir the way the kubelet's atomic writer does: the files go
// into a new timestamped directory, "..data" is switched to it with one rename, and each
// top-level name is a symlink through "..data". A reader sees the old set or the new one.
func writeAtomicDir(dir string, files map[string]volumeFile, gid int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if unchanged(dir, files, gid) {
		// A refresh that changes nothing swaps nothing: a program watching its files (a
		// certificate watcher, say) sees no event.
		return nil
	}
	ts, err := os.MkdirTemp(dir, ".."+time.Now().UTC().Format("2006_01_02_15_04_05.")+"")
	if err != nil {
		return err
	}
	if err := os.Chmod(ts, 0o755); err != nil {
		return err
	}
	tops := map[string]bool{}
	for p, f := range files {
		full := filepath.Join(ts, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(full, f.mode); err != nil {
			return err
		}
		tops[strings.SplitN(p, "/", 2)[0]] = true
	}
	// The new generation belongs to the pod's fsGroup before it is swapped in: a reader running
	// as that group never sees a file it may not read.
	if err := applyFSGroup(ts, gid); err != nil {
		return err
	}
	if err := applyFSGroup(dir, gid); err != nil {
		return err
	}
	data := filepath.Join(dir, "..data")
	old, _ := os.Readlink(data)
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, data); err != nil {
		return err
	}
	for top := range tops {
		link := filepath.Join(dir, top)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", top), link); err != nil {
			return err
		}
	}
	// Names no longer in the set, and the previous generation, go.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "..") || tops[n] {
			continue
		}
		_ = os.Remove(filepath.Join(dir, n))
	}
	if old != "" && old != filepath.Base(ts) {
		_ = os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}

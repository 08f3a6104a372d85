package ipamd

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/flatnet/flatnet/ipamd/store"
	"github.com/flatnet/flatnet/ipamd/wire"
)

// lowerCamel is the key style of ipamd's introspection API.
var lowerCamel = regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)

// TestIntrospectionKeyStyle: every answer of the introspection server (/v1/*, /readyz) keys
// its fields in lowerCamel case, checked on the Go types each handler encodes, nested ones
// and embedded ones included.
func TestIntrospectionKeyStyle(t *testing.T) {
	for _, v := range []any{PoolView{}, ConfigView{}, AddressView{}, store.Interface{}, fastPathView{}, wire.StatusResponse{}} {
		checkKeys(t, reflect.TypeOf(v), reflect.TypeOf(v).Name())
	}
}

func checkKeys(t *testing.T, typ reflect.Type, path string) {
	t.Helper()
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
		typ = typ.Elem()
	}
	if typ.Kind() != reflect.Struct || typ.PkgPath() == "time" || typ.PkgPath() == "net/netip" {
		return
	}
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, ok := f.Tag.Lookup("json")
		key, _, _ := strings.Cut(tag, ",")
		switch {
		case f.Anonymous && key == "":
			checkKeys(t, f.Type, path) // its fields are the parent's
		case !ok || key == "":
			t.Errorf("%s.%s has no json key", path, f.Name)
		case key != "-" && !lowerCamel.MatchString(key):
			t.Errorf("%s.%s has the json key %q, want lowerCamel", path, f.Name, key)
		default:
			checkKeys(t, f.Type, path+"."+f.Name)
		}
	}
}

// TestPoolAndConfigAnswers: /v1/pool and /v1/config as written, decoded generically (every
// optional field set), have only lowerCamel keys, and the token is never shown.
func TestPoolAndConfigAnswers(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CloudToken = "secret-token"
	d := &Daemon{cfg: cfg}
	for _, tc := range []struct {
		path string
		h    func() any
	}{
		{"/v1/pool", func() any { return PoolView{Full: "interface limit", LastCloudError: "throttled"} }},
		{"/v1/config", func() any { return d.configView() }},
	} {
		rec := httptest.NewRecorder()
		writeJSON(rec, tc.h())
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d", tc.path, rec.Code)
		}
		if strings.Contains(rec.Body.String(), "secret-token") {
			t.Errorf("%s shows the cloud token", tc.path)
		}
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		walkKeys(t, tc.path, m)
	}
}

func walkKeys(t *testing.T, path string, v any) {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	for k, sub := range m {
		if !lowerCamel.MatchString(k) {
			t.Errorf("%s: key %q is not lowerCamel", path, k)
		}
		walkKeys(t, path+"."+k, sub)
	}
}

package wire

import (
	"errors"
	"testing"
)

func TestDecodeRequest(t *testing.T) {
	owner := `{"network":"flatnet","containerID":"abc","ifName":"eth0"}`
	for name, tc := range map[string]struct {
		body string
		code string // "" means valid
	}{
		"allocate":        {`{"version":1,"op":"allocate","allocate":{"owner":` + owner + `}}`, ""},
		"status":          {`{"version":1,"op":"status"}`, ""},
		"gc":              {`{"version":1,"op":"gc","gc":{"network":"flatnet","valid":[` + owner + `]}}`, ""},
		"garbage":         {`not json`, CodeInvalid},
		"trailing":        {`{"version":1,"op":"status"} {}`, CodeInvalid},
		"old version":     {`{"version":0,"op":"status"}`, CodeVersion},
		"future version":  {`{"version":2,"op":"status"}`, CodeVersion},
		"unknown field":   {`{"version":1,"op":"status","extra":1}`, CodeInvalid},
		"unknown op":      {`{"version":1,"op":"steal"}`, CodeInvalid},
		"no op":           {`{"version":1}`, CodeInvalid},
		"missing body":    {`{"version":1,"op":"allocate"}`, CodeInvalid},
		"two bodies":      {`{"version":1,"op":"release","release":{"owner":` + owner + `},"check":{"owner":` + owner + `}}`, CodeInvalid},
		"empty container": {`{"version":1,"op":"release","release":{"owner":{"network":"n","containerID":"","ifName":"eth0"}}}`, CodeInvalid},
		"path in owner":   {`{"version":1,"op":"release","release":{"owner":{"network":"../x","containerID":"c","ifName":"eth0"}}}`, CodeInvalid},
		"gc other net":    {`{"version":1,"op":"gc","gc":{"network":"other","valid":[` + owner + `]}}`, CodeInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tc.body))
			if tc.code == "" {
				if err != nil {
					t.Fatalf("valid request refused: %v", err)
				}
				return
			}
			if !errors.Is(err, &Error{Code: tc.code}) {
				t.Fatalf("got %v, want code %s", err, tc.code)
			}
		})
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"version":1,"op":"allocate","allocate":{"owner":{"network":"n","containerID":"c","ifName":"eth0"},"pod":{"namespace":"a","name":"b"}}}`))
	f.Add([]byte(`{"version":1,"op":"gc","gc":{"network":"n","valid":[]}}`))
	f.Add([]byte(`{"version":1,"op":"status","status":{}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRequest(body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Message == "" {
				t.Fatalf("error %v is not a *wire.Error with a message", err)
			}
			return
		}
		// A request that decodes has the body its op needs, with a valid owner.
		switch req.Op {
		case OpAllocate:
			if req.Allocate == nil || req.Allocate.Owner.Validate() != nil {
				t.Fatalf("accepted allocate without a valid owner: %s", body)
			}
		case OpRelease:
			if req.Release == nil || req.Release.Owner.Validate() != nil {
				t.Fatalf("accepted release without a valid owner: %s", body)
			}
		case OpCheck, OpStatus, OpGC:
		default:
			t.Fatalf("accepted unknown op %q", req.Op)
		}
	})
}

// TestOwnerKeyUnambiguous: distinct owners have distinct keys, for fields made of the characters
// that delimit the key ('_', '.', digits); the legacy '_'-joined key gave (abc, x_eth0) and
// (abc_x, eth0) one key.
func TestOwnerKeyUnambiguous(t *testing.T) {
	parts := []string{"a", "_", "a_", "_a", "1.", "1.a", "a_1.b", "2.a_", "x_eth0", "eth0", "abc", "abc_x"}
	seen := map[string]Owner{}
	for _, n := range parts {
		for _, c := range parts {
			for _, i := range parts {
				o := Owner{Network: n, ContainerID: c, IfName: i}
				if prev, ok := seen[o.Key()]; ok {
					t.Fatalf("%+v and %+v share the key %q", prev, o, o.Key())
				}
				seen[o.Key()] = o
			}
		}
	}
	if a, b := (Owner{"flatnet", "abc", "x_eth0"}), (Owner{"flatnet", "abc_x", "eth0"}); a.LegacyKey() != b.LegacyKey() || a.Key() == b.Key() {
		t.Errorf("keys of %+v and %+v: legacy %q/%q, now %q/%q", a, b, a.LegacyKey(), b.LegacyKey(), a.Key(), b.Key())
	}
}

package ipamd_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/ipamd/wire"
)

// rawCall writes body on the socket without closing the write side, like a careless client.
func rawCall(t *testing.T, socket string, body []byte) *wire.Response {
	t.Helper()
	conn, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(body); err != nil {
		t.Fatal(err)
	}
	if uc, ok := conn.(*net.UnixConn); ok && len(body) > 0 && body[len(body)-1] != '}' {
		uc.CloseWrite() // not a complete JSON value: tell the server there is no more
	}
	raw, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	var resp wire.Response
	if err := json.Unmarshal(raw, &resp); err != nil {
		t.Fatalf("answer %q is not a wire.Response: %v", raw, err)
	}
	return &resp
}

func TestBadRequestsGetClearErrorsAndTouchNoOtherOwner(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	n := newNode(t, env, "t3.medium")
	cfg := n.config(t.TempDir())
	start(t, cfg)
	ctx := context.Background()
	victim := owner(1)
	held, err := allocate(ctx, cfg.SocketPath, victim)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		body string
		code string // "" for success
	}{
		"garbage":          {`this is not json`, wire.CodeInvalid},
		"empty object":     {`{}`, wire.CodeVersion},
		"wrong version":    {`{"version":7,"op":"status"}`, wire.CodeVersion},
		"unknown op":       {`{"version":1,"op":"steal","release":{"owner":{"network":"flatnet","containerID":"ctr00001","ifName":"eth0"}}}`, wire.CodeInvalid},
		"missing body":     {`{"version":1,"op":"release"}`, wire.CodeInvalid},
		"missing field":    {`{"version":1,"op":"release","release":{"owner":{"network":"flatnet","ifName":"eth0"}}}`, wire.CodeInvalid},
		"unknown field":    {`{"version":1,"op":"allocate","allocate":{"owner":{"network":"flatnet","containerID":"x","ifName":"eth0"}},"steal":true}`, wire.CodeInvalid},
		"two bodies":       {`{"version":1,"op":"allocate","allocate":{"owner":{"network":"flatnet","containerID":"x","ifName":"eth0"}},"release":{"owner":{"network":"flatnet","containerID":"ctr00001","ifName":"eth0"}}}`, wire.CodeInvalid},
		"unknown owner":    {`{"version":1,"op":"release","release":{"owner":{"network":"flatnet","containerID":"nobody","ifName":"eth0"}}}`, ""},
		"check unknown":    {`{"version":1,"op":"check","check":{"owner":{"network":"flatnet","containerID":"nobody","ifName":"eth0"}}}`, wire.CodeNotFound},
		"gc other network": {`{"version":1,"op":"gc","gc":{"network":"other","valid":[]}}`, ""},
		"path in owner":    {`{"version":1,"op":"release","release":{"owner":{"network":"../flatnet","containerID":"ctr00001","ifName":"eth0"}}}`, wire.CodeInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			resp := rawCall(t, cfg.SocketPath, []byte(tc.body))
			if resp.Version != wire.Version {
				t.Errorf("answer speaks version %d", resp.Version)
			}
			if tc.code == "" {
				if resp.Error != nil {
					t.Fatalf("got %v; want success", resp.Error)
				}
			} else if resp.Error == nil || resp.Error.Code != tc.code || resp.Error.Message == "" {
				t.Fatalf("got %+v; want code %s with a message", resp.Error, tc.code)
			}
			got, err := wire.Call(ctx, cfg.SocketPath, &wire.Request{Op: wire.OpCheck, Check: &wire.CheckRequest{Owner: victim}})
			if err != nil || got.Allocation.IP != held.IP {
				t.Fatalf("another owner's allocation changed: %v %v", got, err)
			}
		})
	}
}

// FuzzHandle feeds arbitrary bodies to the request handler of a live daemon: every answer is a
// versioned response with either a body or an error carrying a code and a message, and an owner
// the input does not name keeps its address.
func FuzzHandle(f *testing.F) {
	for _, s := range []string{
		`{"version":1,"op":"allocate","allocate":{"owner":{"network":"flatnet","containerID":"a","ifName":"eth0"},"pod":{"namespace":"n","name":"p"}}}`,
		`{"version":1,"op":"release","release":{"owner":{"network":"flatnet","containerID":"a","ifName":"eth0"}}}`,
		`{"version":1,"op":"check","check":{"owner":{"network":"flatnet","containerID":"a","ifName":"eth0"}}}`,
		`{"version":1,"op":"status"}`,
		`{"version":1,"op":"gc","gc":{"network":"other","valid":[]}}`,
		`{"version":2,"op":"status"}`, `{}`, `[`, ``,
	} {
		f.Add([]byte(s))
	}
	env := servertest.Start(f, servertest.Options{})
	n := newNode(f, env, "m5.large")
	cfg := n.config(f.TempDir())
	cfg.AllocWait = 200 * time.Millisecond
	d := start(f, cfg)
	victim := wire.Owner{Network: "flatnet", ContainerID: "victim-7f3a", IfName: "eth0"}
	held, err := d.Allocate(context.Background(), &wire.AllocateRequest{Owner: victim})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		resp := d.Handle(context.Background(), body)
		if resp.Version != wire.Version {
			t.Fatalf("answer without version: %+v", resp)
		}
		if resp.Error != nil && (resp.Error.Code == "" || resp.Error.Message == "") {
			t.Fatalf("error without code or message: %+v", resp.Error)
		}
		if resp.Error == nil && resp.Allocation == nil && resp.Release == nil && resp.Status == nil && resp.GC == nil {
			t.Fatalf("success without a body for %q", body)
		}
		if req, err := wire.DecodeRequest(body); err == nil && namesOwner(req, victim) {
			return
		}
		got, err := d.Check(victim)
		if err != nil || got.IP != held.IP {
			t.Fatalf("input %q changed another owner's allocation: %v %v", body, got, err)
		}
	})
}

func namesOwner(req *wire.Request, o wire.Owner) bool {
	switch {
	case req.Release != nil:
		return req.Release.Owner == o
	case req.GC != nil:
		return req.GC.Network == o.Network
	}
	return false
}

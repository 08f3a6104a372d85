package l7

import (
	"bytes"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"
)

// clientHello returns the bytes crypto/tls sends first when dialling serverName (an IP
// address or "" sends no SNI).
func clientHello(t testing.TB, serverName string) []byte {
	t.Helper()
	c, s := net.Pipe()
	defer s.Close()
	go func() {
		cl := tls.Client(c, &tls.Config{ServerName: serverName, InsecureSkipVerify: serverName == ""}) //nolint:gosec // never completes
		_ = cl.Handshake()
		_ = c.Close()
	}()
	_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf bytes.Buffer
	b := make([]byte, 64<<10)
	for {
		n, err := s.Read(b)
		buf.Write(b[:n])
		// One write holds the whole ClientHello record.
		if err != nil || n > 0 {
			break
		}
	}
	return buf.Bytes()
}

// fragment splits a single-record ClientHello into two records at handshake byte at.
func fragment(rec []byte, at int) []byte {
	body := rec[recordHeaderLen:]
	out := append([]byte{}, rec[0], rec[1], rec[2], byte(at>>8), byte(at))
	out = append(out, body[:at]...)
	rest := len(body) - at
	out = append(out, rec[0], rec[1], rec[2], byte(rest>>8), byte(rest))
	return append(out, body[at:]...)
}

func TestReadClientHello(t *testing.T) {
	hello := clientHello(t, "WWW.Example.com")
	noSNI := clientHello(t, "")
	for _, tc := range []struct {
		name, want, err string
		in              []byte
	}{
		{name: "SNI, lower-cased", in: hello, want: "www.example.com"},
		{name: "no SNI", in: noSNI, want: ""},
		{name: "fragmented in the handshake header", in: fragment(hello, 2), want: "www.example.com"},
		{name: "fragmented in the extensions", in: fragment(hello, len(hello)-recordHeaderLen-10), want: "www.example.com"},
		{name: "plain HTTP", in: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), err: "not a TLS ClientHello"},
		{name: "truncated", in: hello[:len(hello)-1], err: "reading a TLS record"},
		{name: "server hello", in: append(append([]byte{}, hello[:recordHeaderLen]...), append([]byte{2}, hello[recordHeaderLen+1:]...)...), err: "handshake type 2"},
		{name: "endless fragments", in: bytes.Repeat([]byte{22, 3, 1, 0, 1, 1}, maxClientHello), err: "longer than"},
	} {
		name, raw, err := readClientHello(bytes.NewReader(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: got %q, %v; want error %q", tc.name, name, err, tc.err)
			}
			continue
		}
		if err != nil || name != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, name, err, tc.want)
		}
		if !bytes.Equal(raw, tc.in) {
			t.Errorf("%s: read %d bytes, not the %d of the ClientHello", tc.name, len(raw), len(tc.in))
		}
	}
	// Bytes after the ClientHello are left for the splice.
	_, raw, err := readClientHello(bytes.NewReader(append(append([]byte{}, hello...), "early"...)))
	if err != nil || !bytes.Equal(raw, hello) {
		t.Errorf("read %d bytes (%v), want the %d of the ClientHello", len(raw), err, len(hello))
	}
}

// FuzzClientHello checks that any input parses or fails without panicking, that what is read
// is a prefix of the input, and that a name found is a lower-case one.
// Seeds: testdata/fuzz/FuzzClientHello (real ClientHellos, fragmented and not).
func FuzzClientHello(f *testing.F) {
	f.Add(clientHello(f, "a.example.com"))
	f.Add(clientHello(f, ""))
	f.Add(fragment(clientHello(f, "b.example.com"), 7))
	f.Fuzz(func(t *testing.T, in []byte) {
		name, raw, err := readClientHello(bytes.NewReader(in))
		if !bytes.HasPrefix(in, raw) {
			t.Fatalf("read %x, not a prefix of the input", raw)
		}
		if len(raw) > maxClientHello+recordHeaderLen+maxTLSRecordPlaintext {
			t.Fatalf("read %d bytes", len(raw))
		}
		if err != nil {
			if name != "" {
				t.Fatalf("error %v with name %q", err, name)
			}
			return
		}
		if name != strings.ToLower(name) || strings.HasSuffix(name, ".") {
			t.Fatalf("name %q not normalised", name)
		}
	})
}

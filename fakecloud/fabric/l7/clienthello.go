package l7

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// A TLS-passthrough listener routes by the server name of the client's ClientHello without
// terminating TLS: it reads the handshake records up to the end of the ClientHello, parses
// them, and replays the bytes read to the chosen target.

// maxClientHello bounds the handshake bytes read before routing (a ClientHello with post-quantum
// key shares is about 2 KiB; the limit leaves room for large extensions).
const maxClientHello = 64 << 10

const (
	recordTypeHandshake   = 22
	handshakeClientHello  = 1
	extensionServerName   = 0
	serverNameTypeHost    = 0
	recordHeaderLen       = 5
	handshakeHeaderLen    = 4
	maxTLSRecordPlaintext = 1<<14 + 2048 // TLSCiphertext's bound; a ClientHello record is plaintext
)

// errNotTLS says the client did not open with a TLS handshake.
var errNotTLS = errors.New("not a TLS ClientHello")

// readClientHello reads r's TLS records until they hold a whole ClientHello and returns its
// SNI server name (lower case, without a trailing dot; "" when the client sent none) and every
// byte read, to replay to the target. The caller bounds the time it takes (a read deadline).
func readClientHello(r io.Reader) (string, []byte, error) {
	var raw, hs []byte
	for {
		var hdr [recordHeaderLen]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return "", raw, fmt.Errorf("reading a TLS record header: %w", err)
		}
		raw = append(raw, hdr[:]...)
		if hdr[0] != recordTypeHandshake || hdr[1] != 3 {
			return "", raw, fmt.Errorf("%w: record type %d, version %d.%d", errNotTLS, hdr[0], hdr[1], hdr[2])
		}
		n := int(binary.BigEndian.Uint16(hdr[3:]))
		if n == 0 || n > maxTLSRecordPlaintext {
			return "", raw, fmt.Errorf("%w: record length %d", errNotTLS, n)
		}
		if len(raw)+n > maxClientHello {
			return "", raw, fmt.Errorf("ClientHello longer than %d bytes", maxClientHello)
		}
		start := len(raw)
		raw = append(raw, make([]byte, n)...)
		if _, err := io.ReadFull(r, raw[start:]); err != nil {
			return "", raw[:start], fmt.Errorf("reading a TLS record: %w", err)
		}
		hs = append(hs, raw[start:]...)
		if len(hs) < handshakeHeaderLen {
			continue
		}
		if hs[0] != handshakeClientHello {
			return "", raw, fmt.Errorf("%w: handshake type %d", errNotTLS, hs[0])
		}
		body := int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
		if handshakeHeaderLen+body > maxClientHello {
			return "", raw, fmt.Errorf("ClientHello of %d bytes, longer than %d", body, maxClientHello)
		}
		if len(hs) >= handshakeHeaderLen+body {
			name, err := parseClientHello(hs[handshakeHeaderLen : handshakeHeaderLen+body])
			return name, raw, err
		}
	}
}

// parseClientHello returns the SNI host name of a ClientHello body (RFC 8446 4.1.2, RFC 6066
// section 3), "" when it has none.
func parseClientHello(b []byte) (string, error) {
	bad := func(what string) (string, error) { return "", fmt.Errorf("malformed ClientHello: %s", what) }
	p := parser(b)
	if !p.skip(2 + 32) { // legacy_version, random
		return bad("short header")
	}
	if sid, ok := p.vec8(); !ok || len(sid) > 32 {
		return bad("session id")
	}
	if cs, ok := p.vec16(); !ok || len(cs) == 0 || len(cs)%2 != 0 {
		return bad("cipher suites")
	}
	if cm, ok := p.vec8(); !ok || len(cm) == 0 {
		return bad("compression methods")
	}
	if len(p) == 0 {
		return "", nil // no extensions
	}
	exts, ok := p.vec16()
	if !ok || len(p) != 0 {
		return bad("extensions")
	}
	seen := map[uint16]bool{}
	name := ""
	for len(exts) > 0 {
		typ, ok := exts.u16()
		if !ok {
			return bad("extension type")
		}
		data, ok := exts.vec16()
		if !ok {
			return bad("extension length")
		}
		if seen[typ] {
			return bad(fmt.Sprintf("extension %d repeated", typ))
		}
		seen[typ] = true
		if typ != extensionServerName {
			continue
		}
		list, ok := data.vec16()
		if !ok || len(data) != 0 || len(list) == 0 {
			return bad("server_name list")
		}
		for len(list) > 0 {
			nt, ok := list.u8()
			if !ok {
				return bad("server_name type")
			}
			v, ok := list.vec16()
			if !ok {
				return bad("server_name entry")
			}
			if nt != serverNameTypeHost {
				continue
			}
			if name != "" {
				return bad("two host names") // RFC 6066: one name of a type
			}
			if len(v) == 0 || strings.ContainsFunc(string(v), func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
				return bad("server name is empty or not printable ASCII")
			}
			name = strings.TrimSuffix(strings.ToLower(string(v)), ".")
		}
	}
	return name, nil
}

// parser consumes a byte string front to back.
type parser []byte

func (p *parser) skip(n int) bool {
	if len(*p) < n {
		return false
	}
	*p = (*p)[n:]
	return true
}

func (p *parser) u8() (byte, bool) {
	if len(*p) < 1 {
		return 0, false
	}
	v := (*p)[0]
	*p = (*p)[1:]
	return v, true
}

func (p *parser) u16() (uint16, bool) {
	if len(*p) < 2 {
		return 0, false
	}
	v := binary.BigEndian.Uint16(*p)
	*p = (*p)[2:]
	return v, true
}

func (p *parser) vec8() (parser, bool) {
	n, ok := p.u8()
	return p.take(int(n), ok)
}

func (p *parser) vec16() (parser, bool) {
	n, ok := p.u16()
	return p.take(int(n), ok)
}

func (p *parser) take(n int, ok bool) (parser, bool) {
	if !ok || len(*p) < n {
		return nil, false
	}
	v := (*p)[:n]
	*p = (*p)[n:]
	return v, true
}

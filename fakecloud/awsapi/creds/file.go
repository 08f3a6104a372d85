package creds

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FormatFile renders key as an AWS shared-credentials file with one profile, default, so that
// AWS_SHARED_CREDENTIALS_FILE=<file> is all an aws CLI or SDK needs.
func FormatFile(key Key) []byte {
	var b bytes.Buffer
	b.WriteString("# fakecloud's administrator AWS keys (fakecloud serve --aws-credentials-file).\n")
	b.WriteString("# Use them with AWS_SHARED_CREDENTIALS_FILE=<this file> and --endpoint-url <fakecloud's URL>.\n")
	b.WriteString("[default]\n")
	fmt.Fprintf(&b, "aws_access_key_id = %s\n", key.AccessKeyID)
	fmt.Fprintf(&b, "aws_secret_access_key = %s\n", key.SecretAccessKey)
	return b.Bytes()
}

// ParseFile reads the default profile (or, without one, the only profile) of a shared-credentials
// file: aws_access_key_id and aws_secret_access_key.
func ParseFile(data []byte) (Key, error) {
	profiles := map[string]map[string]string{}
	var order []string
	current := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[':
			name, ok := strings.CutSuffix(line[1:], "]")
			if !ok || strings.TrimSpace(name) == "" {
				return Key{}, fmt.Errorf("line %d: %q is not a [profile] header", n, line)
			}
			current = strings.TrimSpace(name)
			if profiles[current] == nil {
				profiles[current] = map[string]string{}
				order = append(order, current)
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return Key{}, fmt.Errorf("line %d: expected name = value", n)
			}
			if current == "" {
				return Key{}, fmt.Errorf("line %d: a setting before any [profile] header", n)
			}
			profiles[current][strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return Key{}, err
	}
	name := "default"
	if profiles[name] == nil {
		if len(order) != 1 {
			return Key{}, errors.New("no [default] profile (and not exactly one other profile to take)")
		}
		name = order[0]
	}
	p := profiles[name]
	key := Key{AccessKeyID: p["aws_access_key_id"], SecretAccessKey: p["aws_secret_access_key"]}
	if key.AccessKeyID == "" || key.SecretAccessKey == "" {
		return Key{}, fmt.Errorf("profile [%s] needs aws_access_key_id and aws_secret_access_key", name)
	}
	if IsInstanceKeyID(key.AccessKeyID) {
		return Key{}, fmt.Errorf("profile [%s]: %s has the shape of an instance's key ID (ASIA...); an admin key must not", name, key.AccessKeyID)
	}
	return key, nil
}

// LoadOrCreateAdminFile reads the admin key pair from path, or, when the file does not exist,
// generates one and writes it there (mode 0600, directories 0700). created says which.
func LoadOrCreateAdminFile(path string) (key Key, created bool, err error) {
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		key, err := ParseFile(raw)
		if err != nil {
			return Key{}, false, fmt.Errorf("read AWS credentials file %s: %w", path, err)
		}
		return key, false, nil
	case !errors.Is(err, os.ErrNotExist):
		return Key{}, false, fmt.Errorf("read AWS credentials file: %w", err)
	}
	key = NewAdminKey()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Key{}, false, fmt.Errorf("create AWS credentials directory: %w", err)
	}
	// O_EXCL: two servers starting at once must not overwrite each other's keys.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Key{}, false, fmt.Errorf("write AWS credentials file: %w", err)
	}
	if _, err := f.Write(FormatFile(key)); err != nil {
		f.Close()
		return Key{}, false, fmt.Errorf("write AWS credentials file: %w", err)
	}
	if err := f.Close(); err != nil {
		return Key{}, false, fmt.Errorf("write AWS credentials file: %w", err)
	}
	return key, true, nil
}

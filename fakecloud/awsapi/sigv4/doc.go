// Package sigv4 verifies AWS Signature Version 4 (AWS4-HMAC-SHA256) on incoming HTTP requests, in
// both of its forms: the Authorization header and the presigned query string. It knows nothing of
// who owns a key: the caller parses the signature, looks the access key up, and verifies with the
// secret it found. Written from the published algorithm; it uses the standard library only.
package sigv4

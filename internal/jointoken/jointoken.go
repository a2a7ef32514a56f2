// Package jointoken is how a joining node trusts the cluster from the join
// token alone, with no trust on first use: the cluster service answers an
// unauthenticated discovery request with its CA bundle and a MAC over it,
// keyed by the token through a slow KDF (argon2id), the way kubeadm's
// bootstrap-token discovery signs cluster-info. A node that knows the token
// checks the MAC before it trusts the bundle, then talks to the cluster
// over TLS verified against it and only then sends the token. A captured
// reply gives an attacker a MAC to brute-force the token against, and each
// guess costs one argon2id derivation.
package jointoken

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/crypto/argon2"
)

// KDF parameters: RFC 9106's second recommended option (64 MiB, 3 passes).
const (
	kdfTime    = 3
	kdfMemory  = 64 * 1024 // KiB
	kdfThreads = 2
	keyLen     = 32
	saltLen    = 16
	// Version names the MAC construction, so a later one can be told apart.
	Version = "argon2id-hmac-sha256-v1"
)

// Discovery is the cluster service's answer to a joining node.
type Discovery struct {
	Version string `json:"version"`
	// CABundle is the cluster CA certificate (PEM).
	CABundle []byte `json:"caBundle"`
	Salt     []byte `json:"salt"`
	MAC      []byte `json:"mac"`
}

// ErrInvalidToken means the token does not match the cluster's: the error
// a user reads is "invalid token".
var ErrInvalidToken = errors.New("invalid token")

func key(token string, salt []byte) []byte {
	return argon2.IDKey([]byte(token), salt, kdfTime, kdfMemory, kdfThreads, keyLen)
}

func mac(key, bundle []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(Version + "\x00"))
	m.Write(bundle)
	return m.Sum(nil)
}

// Sign makes the discovery answer for bundle under token, with a fresh
// salt. It costs one argon2id derivation: the cluster service signs once
// and serves the answer until the token changes.
func Sign(token string, bundle []byte) (Discovery, error) {
	if token == "" {
		return Discovery{}, errors.New("sign discovery: empty token")
	}
	if _, err := Pool(bundle); err != nil {
		return Discovery{}, err
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return Discovery{}, err
	}
	return Discovery{Version: Version, CABundle: bundle, Salt: salt, MAC: mac(key(token, salt), bundle)}, nil
}

// Verify checks d against token and returns the pool of the CA it vouches
// for. A wrong token and a tampered bundle look the same: ErrInvalidToken.
func Verify(token string, d Discovery) (*x509.CertPool, error) {
	if d.Version != Version {
		return nil, fmt.Errorf("discovery: unknown version %q (this gravity knows %s)", d.Version, Version)
	}
	if len(d.Salt) != saltLen || len(d.MAC) != sha256.Size {
		return nil, errors.New("discovery: malformed answer")
	}
	if !hmac.Equal(mac(key(token, d.Salt), d.CABundle), d.MAC) {
		return nil, ErrInvalidToken
	}
	return Pool(d.CABundle)
}

// Pool parses a bundle of CA certificates (PEM) into a pool; the bundle
// must hold only CA certificates, at least one.
func Pool(bundle []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := bundle; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			if strings.TrimSpace(string(rest)) != "" {
				return nil, errors.New("CA bundle: data that is not PEM")
			}
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("CA bundle: PEM block %q", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA bundle: %w", err)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("CA bundle: %q is not a CA", c.Subject.CommonName)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("CA bundle: no certificate")
	}
	return pool, nil
}

// Header carries the token on requests after discovery (over TLS verified
// against the discovered CA).
const Header = "Authorization"

// Set puts token on r.
func Set(r *http.Request, token string) { r.Header.Set(Header, "Bearer "+token) }

// Check reports whether r carries token, in constant time.
func Check(r *http.Request, token string) bool {
	got, ok := strings.CutPrefix(r.Header.Get(Header), "Bearer ")
	return ok && token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

package vendor

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/opengravity/gravity/internal/store"
)

// Kinds of failure, for errors.Is on a Vendor error.
var (
	ErrNotFound       = errors.New("not found")
	ErrUnauthorized   = errors.New("authentication failed")
	ErrUnreachable    = errors.New("registry unreachable")
	ErrDigestMismatch = store.ErrDigestMismatch
)

// Error explains why one image could not be vendored: every place that was
// tried, and what each said.
type Error struct {
	Ref      string
	Users    []string
	Offline  bool
	Attempts []Attempt
}

// Attempt is one place an image was looked for.
type Attempt struct {
	Where string // "local store", "mirror HOST", "registry HOST"
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "image %s", e.Ref)
	if len(e.Users) > 0 {
		fmt.Fprintf(&b, " (wanted by %s)", strings.Join(e.Users, "; "))
	}
	switch {
	case e.Offline:
		b.WriteString(" is not in the local store (offline)")
	case e.only(ErrNotFound):
		b.WriteString(" was not found")
	default:
		b.WriteString(" could not be vendored")
	}
	b.WriteString(":")
	for _, a := range e.Attempts {
		fmt.Fprintf(&b, "\n  %s: %v", a.Where, a.Err)
	}
	b.WriteString("\n  hint: if you have the image as a file (docker save / OCI archive), import it with `tele image load FILE`")
	return b.String()
}

// only reports whether every attempt failed with kind.
func (e *Error) only(kind error) bool {
	for _, a := range e.Attempts {
		if !errors.Is(a.Err, kind) {
			return false
		}
	}
	return len(e.Attempts) > 0
}

func (e *Error) Unwrap() []error {
	out := make([]error, len(e.Attempts))
	for i, a := range e.Attempts {
		out[i] = a.Err
	}
	return out
}

// attemptError pairs a failure kind with its cause and a message for users.
type attemptError struct {
	kind  error
	msg   string
	cause error
}

func (a *attemptError) Error() string   { return a.msg }
func (a *attemptError) Unwrap() []error { return []error{a.kind, a.cause} }

// classify turns a registry or store error into a message that says what
// went wrong with registry reg and what to do about it.
func classify(err error, reg string) error {
	var te *transport.Error
	switch {
	case errors.Is(err, store.ErrDigestMismatch) || strings.Contains(err.Error(), "does not match requested digest") ||
		strings.Contains(err.Error(), "error verifying"):
		return &attemptError{ErrDigestMismatch, fmt.Sprintf("digest mismatch: the content from %s does not match its digest (%v)", reg, err), err}
	case errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden || hasCode(te, transport.UnauthorizedErrorCode, transport.DeniedErrorCode)):
		return &attemptError{ErrUnauthorized, fmt.Sprintf("authentication failed for registry %s: log in with `docker login %s` or fix its credentials in ~/.docker/config.json (%v)", reg, reg, err), err}
	case errors.As(err, &te) && (te.StatusCode == http.StatusNotFound || hasCode(te, transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode)):
		return &attemptError{ErrNotFound, "not found", err}
	case isTLS(err):
		return &attemptError{ErrUnreachable, fmt.Sprintf("registry %s: TLS failed (if it uses plain HTTP or a self-signed certificate, mark it insecure): %v", reg, err), err}
	case isNetwork(err):
		return &attemptError{ErrUnreachable, fmt.Sprintf("registry %s is unreachable: %v", reg, err), err}
	}
	return &attemptError{err, err.Error(), err}
}

func hasCode(te *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range te.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

func isTLS(err error) bool {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	return errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &rh)
}

func isNetwork(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	var ne net.Error
	return errors.As(err, &op) || errors.As(err, &dns) || (errors.As(err, &ne) && ne.Timeout())
}

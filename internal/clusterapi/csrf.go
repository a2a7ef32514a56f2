package clusterapi

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/opengravity/gravity/internal/identity"
)

// The web panel's protection against cross-site requests: a browser sends
// the session cookie with any request to the cluster, whoever's page made
// it, but only the panel's own scripts can read CSRFCookie and send its
// value back in CSRFHeader.
const (
	CSRFCookie = "grv_csrf"
	CSRFHeader = "X-CSRF-Token"
)

var errCSRF = errors.New("this request came with the session cookie but without the session's " + CSRFHeader +
	" header (the " + CSRFCookie + " cookie's value): reload the page, or use an API token")

// csrfToken is the CSRF token of the session stored as sessionHash. It is
// derived from the session, so a cookie planted by another site (or
// another session) does not pass.
func csrfToken(sessionHash string) string { return identity.SecretHash("csrf:" + sessionHash) }

// checkCSRF refuses a request that changes something and was
// authenticated by the session cookie, unless it carries the session's
// CSRF token both in its header and in its cookie. Bearer tokens and
// client certificates are not sent by browsers on their own.
func checkCSRF(r *http.Request, c *caller) error {
	if !c.cookie {
		return nil
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	header := r.Header.Get(CSRFHeader)
	cookie, err := r.Cookie(CSRFCookie)
	if header == "" || err != nil || !identity.Equal(header, cookie.Value) || !identity.Equal(header, csrfToken(c.session)) {
		return errCSRF
	}
	return nil
}

// setCSRFCookie gives the panel's scripts the CSRF token of a new session.
func setCSRFCookie(w http.ResponseWriter, sess *SessionResponse) {
	http.SetCookie(w, &http.Cookie{Name: CSRFCookie, Value: csrfToken(identity.SecretHash(sess.Token)), Path: "/",
		Expires: sess.Expires, Secure: true, SameSite: http.SameSiteStrictMode})
}

func clearCSRFCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CSRFCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, SameSite: http.SameSiteStrictMode})
}

// crossSite says whether a browser sent r from another site's page:
// browsers say where a request comes from (Sec-Fetch-Site, and Origin on
// every POST), other clients send neither. A login forged so would sign
// the browser in as whoever that site chose.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return true
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		return err != nil || u.Host != r.Host
	}
	return false
}

package clusterapi

import (
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/resources"
	"github.com/opengravity/gravity/internal/webui"
)

//go:embed web/signup.html
var signupHTML string

var signupPage = template.Must(template.New("signup").Parse(signupHTML))

type signupView struct {
	Title, Button, Cluster, User, Error string
	MinLength                           int
	// OTPSecret and OTPURL are shown when the cluster asks for a second
	// factor: the key to add to an authenticator app.
	OTPSecret string
	OTPURL    template.URL // otpauth://, which templates would otherwise refuse
}

// webHeaders are every page's: nothing is loaded from anywhere but this
// service, nothing is cached, and the page cannot be framed.
func webHeaders(w http.ResponseWriter) {
	h := w.Header()
	webui.SecurityHeaders(h) // no-referrer among them: the link's secret is in the URL
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
}

func (s *API) signupView(r *http.Request) signupView {
	v := signupView{Title: "Sign up", Button: "Create account", Cluster: s.cfg.Self.ClusterName, MinLength: resources.MinPasswordLength}
	if strings.HasPrefix(r.URL.Path, PathReset) {
		v.Title, v.Button = "Reset password", "Set password"
	}
	return v
}

// handleSignupPage shows the form an invitation or reset link opens.
func (s *API) handleSignupPage(w http.ResponseWriter, r *http.Request) {
	v := s.signupView(r)
	status := http.StatusOK
	info, err := s.ticketInfo(r.Context(), r.PathValue("secret"))
	if err != nil {
		v.Error, status = errMessage(err), http.StatusNotFound
	} else {
		v.User, v.OTPSecret, v.OTPURL = info.User, info.OTPSecret, template.URL(info.OTPURL)
	}
	webHeaders(w)
	w.WriteHeader(status)
	_ = signupPage.Execute(w, v)
}

// handleSignupForm takes the form's password, as a browser posts it.
func (s *API) handleSignupForm(w http.ResponseWriter, r *http.Request) {
	v := s.signupView(r)
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	secret := r.PathValue("secret")
	info, err := s.ticketInfo(r.Context(), secret)
	if err == nil {
		v.User, v.OTPSecret, v.OTPURL = info.User, info.OTPSecret, template.URL(info.OTPURL)
		switch {
		case r.ParseForm() != nil:
			err = refuse("the form could not be read")
		case r.PostForm.Get("password") != r.PostForm.Get("confirm"):
			err = refuse("the two passwords differ")
		}
	}
	var sess *SessionResponse
	if err == nil {
		sess, err = s.completeTicket(r, secret, r.PostForm.Get("password"), r.PostForm.Get("otp"))
	}
	webHeaders(w)
	if err != nil {
		v.Error = errMessage(err)
		status := http.StatusBadRequest
		if errors.Is(err, errNotFound) || errors.Is(err, cluster.ErrNotFound) {
			status, v.User = http.StatusNotFound, ""
		}
		w.WriteHeader(status)
		_ = signupPage.Execute(w, v)
		return
	}
	s.setSessionCookie(w, sess)
	http.Redirect(w, r, webui.Path, http.StatusSeeOther)
}

// errMessage is err as a page shows it: without the classification.
func errMessage(err error) string {
	for _, marker := range []error{errBadRequest, errNotFound} {
		if errors.Is(err, marker) {
			msg := err.Error()
			if p := marker.Error() + ": "; len(msg) > len(p) && msg[:len(p)] == p {
				return msg[len(p):]
			}
		}
	}
	return err.Error()
}

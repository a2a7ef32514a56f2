// Package webui is the web control panel that every master's cluster
// service serves at the cluster management URL (/web/): its pages,
// styles and scripts, embedded in the binary. It is a client of the
// cluster API (package clusterapi) alone: it shows what the API answers
// and hides what the caller's permissions (GET /v1/whoami) forbid, and
// the API decides.
//
// Contract: every asset comes from this package, with a Content Security
// Policy that lets the pages load nothing from anywhere else and run no
// inline script or style; nothing here refers to another site.
package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// Path is where the panel is served; its pages are fragments of it
// (/web/#/nodes), so that only the assets are separate requests.
const Path = "/web/"

// AssetsPath holds the stylesheet and scripts the pages (and the signup
// pages of package clusterapi) load.
const AssetsPath = Path + "assets/"

// CSP lets a page load only this service's scripts, styles and images,
// talk to it alone, and post forms to it alone.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

//go:embed assets
var embedded embed.FS

// assets are the files under assets/, by name.
var assets = func() fs.FS {
	sub, err := fs.Sub(embedded, "assets")
	if err != nil {
		panic(err) // the embed pattern names the directory
	}
	return sub
}()

// SecurityHeaders are every page's and asset's: the CSP, HTTPS only, no
// type sniffing, no referrer (invitation links carry their secret in the
// URL).
func SecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("Strict-Transport-Security", "max-age=31536000")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// Handler serves the panel: index.html at Path, the assets under
// AssetsPath, 404 for anything else.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	SecurityHeaders(w.Header())
	name := ""
	switch {
	case r.URL.Path == Path:
		name = "index.html"
	case strings.HasPrefix(r.URL.Path, AssetsPath):
		name = strings.TrimPrefix(r.URL.Path, AssetsPath)
	}
	data, err := fs.ReadFile(assets, name)
	if name == "" || name == "index.html" && r.URL.Path != Path || err != nil {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	sum := sha256.Sum256(data)
	w.Header().Set("Content-Type", ctype)
	// Assets change with the binary: the browser asks again each time,
	// and a matching ETag answers without the body.
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:12])+`"`)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}

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
	"compress/gzip"
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

// compressed are the assets gzipped once, for the browsers that take it
// (all do): the script goes in less than a third of its size.
var compressed = func() map[string][]byte {
	out := map[string][]byte{}
	err := fs.WalkDir(assets, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(assets, name)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid
		if _, err := zw.Write(data); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		out[name] = buf.Bytes()
		return nil
	})
	if err != nil {
		panic(err) // the embedded files are in memory
	}
	return out
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
	etag := hex.EncodeToString(sum[:12])
	h := w.Header()
	h.Set("Content-Type", ctype)
	// Assets change with the binary: the browser asks again each time,
	// and a matching ETag answers without the body.
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept-Encoding")
	if gz, ok := compressed[name]; ok && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		data, etag = gz, etag+"-gz"
	}
	h.Set("ETag", `"`+etag+`"`)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

package webui

import (
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://10.0.0.1:3009"+path, nil))
	return rec.Result()
}

func TestHeaders(t *testing.T) {
	for _, tc := range []struct {
		path, ctype string
		status      int
	}{
		{Path, "text/html; charset=utf-8", 200},
		{AssetsPath + "panel.js", "text/javascript; charset=utf-8", 200},
		{AssetsPath + "panel.css", "text/css; charset=utf-8", 200},
		{AssetsPath + "index.html", "", 404}, // only at Path
		{AssetsPath + "nosuch.js", "", 404},
		{AssetsPath, "", 404},
		{Path + "nodes", "", 404},
	} {
		resp := get(t, tc.path)
		h := resp.Header
		if resp.StatusCode != tc.status || tc.ctype != "" && h.Get("Content-Type") != tc.ctype {
			t.Errorf("%s: %d %q, want %d %q", tc.path, resp.StatusCode, h.Get("Content-Type"), tc.status, tc.ctype)
		}
		for k, want := range map[string]string{
			"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
				"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
			"Strict-Transport-Security": "max-age=31536000",
			"X-Content-Type-Options":    "nosniff",
			"Referrer-Policy":           "no-referrer",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", tc.path, k, got, want)
			}
		}
	}
}

// TestAssets checks what the CSP and the air gap need of the files: every
// asset a page refers to exists and is served; none refers to anything
// outside the service, and no page has an inline script or style.
func TestAssets(t *testing.T) {
	ref := regexp.MustCompile(`(?:src|href)="([^"]*)"`)
	absolute := regexp.MustCompile(`(?i)(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	err := fs.WalkDir(assets, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(assets, name)
		if err != nil {
			return err
		}
		text := string(data)
		if m := absolute.FindString(text); m != "" {
			t.Errorf("%s refers to %s: every asset comes from the cluster", name, m)
		}
		if !strings.HasSuffix(name, ".html") {
			return nil
		}
		if strings.Contains(text, "<style") || strings.Contains(text, " style=") || regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).MatchString(text) ||
			regexp.MustCompile(`\son[a-z]+=`).MatchString(text) {
			t.Errorf("%s has an inline style or script, which the CSP refuses", name)
		}
		for _, m := range ref.FindAllStringSubmatch(text, -1) {
			u := m[1]
			switch {
			case u == "data:," || strings.HasPrefix(u, "#"):
			case strings.HasPrefix(u, AssetsPath):
				if resp := get(t, u); resp.StatusCode != 200 {
					t.Errorf("%s refers to %s, which answers %d", name, u, resp.StatusCode)
				}
			default:
				t.Errorf("%s refers to %q, not an asset of the panel", name, u)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(get(t, Path).Body)
	if !strings.Contains(string(body), `src="/web/assets/panel.js"`) {
		t.Errorf("the index page does not load the panel's script:\n%s", body)
	}
}

// TestETag: a browser that has an asset gets 304.
func TestETag(t *testing.T) {
	resp := get(t, AssetsPath+"panel.css")
	etag := resp.Header.Get("ETag")
	req := httptest.NewRequest(http.MethodGet, AssetsPath+"panel.css", nil)
	req.Header.Set("If-None-Match", etag)
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	if etag == "" || rec.Code != http.StatusNotModified {
		t.Errorf("ETag %q, revalidation %d", etag, rec.Code)
	}
}

// TestGzip: the assets go compressed to who takes it, whole to the rest.
func TestGzip(t *testing.T) {
	whole, _ := io.ReadAll(get(t, AssetsPath+"panel.js").Body)
	req := httptest.NewRequest(http.MethodGet, AssetsPath+"panel.js", nil)
	req.Header.Set("Accept-Encoding", "gzip, deflate, br")
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	if rec.Header().Get("Content-Encoding") != "gzip" || rec.Body.Len() >= len(whole)/2 {
		t.Fatalf("gzip: %q, %d bytes of %d", rec.Header().Get("Content-Encoding"), rec.Body.Len(), len(whole))
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := io.ReadAll(zr); err != nil || string(data) != string(whole) {
		t.Errorf("the gzipped script is not the script: %v", err)
	}
}

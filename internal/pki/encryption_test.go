package pki

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEncryptionConfig(t *testing.T) {
	a, err := NewEncryptionConfig()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewEncryptionConfig()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Fatal("two clusters got the same key")
	}
	if err := CheckEncryptionConfig(a); err != nil {
		t.Fatalf("a new config is refused: %v\n%s", err, a)
	}
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	key2 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	doc := func(providers string) []byte {
		return []byte("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n" + providers)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string // "" for valid
	}{
		{"one key", doc("  - secretbox: {keys: [{name: key1, secret: " + key + "}]}\n  - identity: {}\n"), ""},
		{"rotating: two keys", doc("  - secretbox: {keys: [{name: key2, secret: " + key2 + "}, {name: key1, secret: " + key + "}]}\n  - identity: {}\n"), ""},
		{"identity first", doc("  - identity: {}\n  - secretbox: {keys: [{name: key1, secret: " + key + "}]}\n"), "written unencrypted"},
		{"no providers", doc(""), "written unencrypted"},
		{"short key", doc("  - secretbox: {keys: [{name: key1, secret: " + base64.StdEncoding.EncodeToString([]byte("short")) + "}]}\n"), "want 32 bytes"},
		{"not base64", doc("  - secretbox: {keys: [{name: key1, secret: '!!!'}]}\n"), "want 32 bytes"},
		{"repeated name", doc("  - secretbox: {keys: [{name: k, secret: " + key + "}, {name: k, secret: " + key2 + "}]}\n"), "repeated"},
		{"repeated key", doc("  - secretbox: {keys: [{name: a, secret: " + key + "}, {name: b, secret: " + key + "}]}\n"), "repeats another key"},
		{"aesgcm unknown here", doc("  - aesgcm: {keys: [{name: key1, secret: " + key + "}]}\n"), "unknown field"},
		{"no secrets", []byte("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [configmaps]\n  providers:\n  - identity: {}\n"), "no resources entry"},
		{"wrong kind", []byte("apiVersion: v1\nkind: ConfigMap\n"), "want apiserver.config.k8s.io/v1"},
		{"not yaml", []byte("\t:"), EncryptionConfigName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckEncryptionConfig(tc.data)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestCASetEncryptionConfig: the config is saved 0600 with the CAs, loaded
// back whole (keys an administrator added by rotation included), and a
// damaged one is refused on load.
func TestCASetEncryptionConfig(t *testing.T) {
	cs := mustCASet(t)
	dir := filepath.Join(t.TempDir(), "pki")
	if err := cs.Save(dir, false); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, EncryptionConfigName)
	if got := fileMode(t, path); got != 0o600 {
		t.Errorf("mode %v", got)
	}
	loaded, err := LoadCASet(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(loaded.EncryptionConfig, cs.EncryptionConfig) {
		t.Error("loaded config differs from the saved one")
	}
	if err := os.WriteFile(path, []byte("kind: EncryptionConfiguration\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCASet(dir); err == nil || !strings.Contains(err.Error(), EncryptionConfigName) {
		t.Errorf("a damaged config loaded: %v", err)
	}
}

func FuzzCheckEncryptionConfig(f *testing.F) {
	good, err := NewEncryptionConfig()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources: [{resources: [secrets], providers: [{identity: {}}]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if CheckEncryptionConfig(data) != nil {
			return
		}
		// Whatever passes encrypts Secrets with a 32-byte secretbox key.
		if !bytes.Contains(data, []byte("secretbox")) {
			t.Fatalf("accepted without secretbox: %q", data)
		}
	})
}

package pki

import (
	"bytes"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func masterNode() Node {
	return Node{Name: "10.0.0.1", IP: net.ParseIP("10.0.0.1"), Master: true, ServiceIP: net.ParseIP("10.100.0.1"), Now: testNow}
}

func fileMode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestWriteDirModes(t *testing.T) {
	cs := mustCASet(t)
	certs, err := NodeCerts(cs, masterNode())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "pki")
	// A directory someone made world-readable is tightened.
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := cs.Save(dir, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteDir(dir, certs); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		seen[filepath.ToSlash(rel)] = true
		// Literal modes, not the package's constants: this is the contract.
		want := map[string]fs.FileMode{".crt": 0o600, ".pub": 0o600, ".key": 0o600, ".yaml": 0o600}[filepath.Ext(path)]
		if d.IsDir() {
			want = 0o700
		}
		if want == 0 {
			t.Errorf("unexpected file %s (a temporary file left behind?)", rel)
		} else if got := fileMode(t, path); got != want {
			t.Errorf("%s: mode %v, want %v", rel, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range certs {
		for _, ext := range []string{CertExt, KeyExt} {
			if !seen[name+ext] {
				t.Errorf("%s%s not written", name, ext)
			}
		}
	}
	for _, f := range append(caFiles(), "etcd") {
		if !seen[f] {
			t.Errorf("%s not written", f)
		}
	}
}

func TestWriteDirReplacesAndLoads(t *testing.T) {
	cs := mustCASet(t)
	dir := t.TempDir()
	for i := 0; i < 2; i++ { // the second write is a renewal: it replaces
		certs, err := NodeCerts(cs, masterNode())
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteDir(dir, certs); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		for name, kp := range certs {
			got, err := LoadKeyPair(dir, name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Cert.Raw, kp.Cert.Raw) || !keyMatches(got.Cert, kp.Key) {
				t.Errorf("write %d: %s does not load back as written", i, name)
			}
		}
	}
}

func TestWriteDirBadNames(t *testing.T) {
	kp := &mustCA(t, "x").KeyPair
	for _, name := range []string{"", "../escape", "/abs", "a/../../b", `a\b`} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			err := WriteDir(filepath.Join(dir, "pki"), map[string]*KeyPair{name: kp})
			if err == nil || !strings.Contains(err.Error(), "invalid key pair name") {
				t.Fatalf("err=%v, want invalid key pair name", err)
			}
		})
	}
	if err := WriteDir(t.TempDir(), map[string]*KeyPair{"x": {Cert: kp.Cert}}); err == nil {
		t.Fatal("a pair without a key was written")
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	cs := mustCASet(t)
	dir := t.TempDir()
	if err := cs.Save(dir, false); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCASet(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		orig, got *CA
	}{{"cluster", cs.Cluster, got.Cluster}, {"etcd", cs.Etcd, got.Etcd}, {"front-proxy", cs.FrontProxy, got.FrontProxy}} {
		if !bytes.Equal(c.orig.Cert.Raw, c.got.Cert.Raw) || !publicKeyEqual(c.orig.Key.Public(), c.got.Key.Public()) {
			t.Errorf("%s CA differs after the round trip", c.name)
		}
	}
	if !publicKeyEqual(cs.ServiceAccount.Public(), got.ServiceAccount.Public()) {
		t.Error("service account key differs after the round trip")
	}
	// The loaded CA issues what the original trusts: a joining node works.
	certs, err := NodeCerts(got, Node{Name: "10.0.0.2", IP: net.ParseIP("10.0.0.2"), Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Cluster.Verify(certs[KubeletClient].Cert, UsageClient, testNow); err != nil {
		t.Fatalf("certificate from the loaded CA: %v", err)
	}
}

func TestSaveRefusesToReplaceCA(t *testing.T) {
	first, second := mustCASet(t), mustCASet(t)
	dir := t.TempDir()
	if err := first.Save(dir, false); err != nil {
		t.Fatal(err)
	}
	err := second.Save(dir, false)
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), filepath.Join(dir, "ca.crt")) {
		t.Fatalf("second save: err=%v, want ErrExist naming ca.crt", err)
	}
	assertCA := func(want *CASet) {
		t.Helper()
		got, err := LoadCASet(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Cluster.Cert.Raw, want.Cluster.Cert.Raw) || !bytes.Equal(got.Etcd.Cert.Raw, want.Etcd.Cert.Raw) {
			t.Fatal("the CA on disk is not the expected one")
		}
	}
	assertCA(first)
	// One file left from a crashed save is enough to refuse.
	dir2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir2, "sa.pub"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := second.Save(dir2, false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("save over a partial set: err=%v, want ErrExist", err)
	}
	if err := second.Save(dir, true); err != nil {
		t.Fatalf("save with overwrite: %v", err)
	}
	assertCA(second)
}

func TestLoadErrors(t *testing.T) {
	cs := mustCASet(t)
	leaf, err := cs.Cluster.Issue(Request{CommonName: "leaf", Usages: UsageClient, Validity: DefaultCertValidity, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := leaf.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		files map[string][]byte // relative to the PKI dir; nil data: remove
		wants []string
	}{
		{"corrupt certificate", map[string][]byte{"ca.crt": []byte("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")}, []string{"ca.crt", "no PEM certificate"}},
		{"truncated certificate", map[string][]byte{"etcd/ca.crt": truncated(t, cs.Etcd.CertPEM())}, []string{"etcd/ca.crt"}},
		{"garbage der", map[string][]byte{"front-proxy-ca.crt": []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}, []string{"front-proxy-ca.crt", "parse certificate"}},
		{"two certificates", map[string][]byte{"ca.crt": append(cs.Cluster.CertPEM(), cs.Etcd.CertPEM()...)}, []string{"ca.crt", "unexpected data"}},
		{"key is not PEM", map[string][]byte{"ca.key": []byte("hello")}, []string{"ca.key", "no PEM private key"}},
		{"key of another CA", map[string][]byte{"ca.key": mustKeyPEM(t, &cs.Etcd.KeyPair)}, []string{"ca.key does not match", "ca.crt"}},
		{"not a CA", map[string][]byte{"ca.crt": leaf.CertPEM(), "ca.key": leafKey}, []string{"ca.crt", "not a CA"}},
		{"missing key", map[string][]byte{"etcd/ca.key": nil}, []string{"etcd/ca"}},
		{"sa.pub of another key", map[string][]byte{"sa.pub": mustPubPEM(t, cs.Cluster)}, []string{"sa.pub does not match", "sa.key"}},
		{"sa.key corrupt", map[string][]byte{"sa.key": []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")}, []string{"sa.key", "parse private key"}},
		{"sa.pub is a certificate", map[string][]byte{"sa.pub": cs.Cluster.CertPEM()}, []string{"sa.pub", `"CERTIFICATE", want "PUBLIC KEY"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := cs.Save(dir, false); err != nil {
				t.Fatal(err)
			}
			for f, data := range tc.files {
				p := filepath.Join(dir, filepath.FromSlash(f))
				if data == nil {
					err = os.Remove(p)
				} else {
					err = os.WriteFile(p, data, 0o600)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			_, err := LoadCASet(dir)
			if err == nil {
				t.Fatal("loaded a damaged CA set")
			}
			for _, w := range tc.wants {
				if !strings.Contains(filepath.ToSlash(err.Error()), w) {
					t.Errorf("err=%q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func truncated(t *testing.T, b []byte) []byte {
	t.Helper()
	return b[:len(b)/2]
}

func mustKeyPEM(t *testing.T, kp *KeyPair) []byte {
	t.Helper()
	b, err := kp.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustPubPEM(t *testing.T, ca *CA) []byte {
	t.Helper()
	dir := t.TempDir()
	cs := &CASet{Cluster: ca, Etcd: ca, FrontProxy: ca, ServiceAccount: ca.Key}
	if err := cs.saveServiceAccount(dir, false); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "sa.pub"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

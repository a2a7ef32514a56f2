package jointoken

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/pki"
)

func caPEM(t testing.TB) []byte {
	cs, err := pki.NewCASet("c", pki.DefaultCAValidity, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return cs.Cluster.CertPEM()
}

func TestSignVerify(t *testing.T) {
	bundle := caPEM(t)
	d, err := Sign("s3cret-token", bundle)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify("s3cret-token", d); err != nil {
		t.Fatalf("right token: %v", err)
	}
	other := caPEM(t)
	for _, tc := range []struct {
		name  string
		token string
		edit  func(*Discovery)
		want  error
		msg   string
	}{
		{name: "wrong token", token: "s3cret-tokeN", want: ErrInvalidToken},
		{name: "swapped CA (man in the middle)", token: "s3cret-token", edit: func(d *Discovery) { d.CABundle = other }, want: ErrInvalidToken},
		{name: "CA appended", token: "s3cret-token", edit: func(d *Discovery) { d.CABundle = append(bytes.Clone(d.CABundle), other...) }, want: ErrInvalidToken},
		{name: "salt changed", token: "s3cret-token", edit: func(d *Discovery) { d.Salt = bytes.Repeat([]byte{1}, saltLen) }, want: ErrInvalidToken},
		{name: "short MAC", token: "s3cret-token", edit: func(d *Discovery) { d.MAC = d.MAC[:5] }, msg: "malformed"},
		{name: "other version", token: "s3cret-token", edit: func(d *Discovery) { d.Version = "v0" }, msg: "unknown version"},
	} {
		c := d
		c.CABundle, c.Salt, c.MAC = bytes.Clone(d.CABundle), bytes.Clone(d.Salt), bytes.Clone(d.MAC)
		if tc.edit != nil {
			tc.edit(&c)
		}
		_, err := Verify(tc.token, c)
		switch {
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		case tc.msg != "" && (err == nil || !strings.Contains(err.Error(), tc.msg)):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.msg)
		}
	}
	if _, err := Sign("", bundle); err == nil {
		t.Error("empty token signed")
	}
	if _, err := Sign("t", []byte("not a CA")); err == nil {
		t.Error("junk bundle signed")
	}
	// Two signings use different salts: a reply says nothing about another.
	d2, _ := Sign("s3cret-token", bundle)
	if bytes.Equal(d.Salt, d2.Salt) || bytes.Equal(d.MAC, d2.MAC) {
		t.Error("salt reused")
	}
}

func TestCheck(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	if Check(r, "t") {
		t.Error("no header accepted")
	}
	Set(r, "t")
	if !Check(r, "t") || Check(r, "u") || Check(r, "") {
		t.Error("check")
	}
}

func TestPoolRefusesLeaf(t *testing.T) {
	cs, _ := pki.NewCASet("c", pki.DefaultCAValidity, time.Now())
	kp, err := cs.Cluster.Issue(pki.Request{CommonName: "leaf", Validity: time.Hour, Usages: pki.UsageClient})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Pool(kp.CertPEM()); err == nil || !strings.Contains(err.Error(), "is not a CA") {
		t.Fatalf("err = %v", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	d, err := Sign("s3cret-token", caPEM(b))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Verify("s3cret-token", d); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	d, err := Sign("t", caPEM(f))
	if err != nil {
		f.Fatal(err)
	}
	seed, _ := json.Marshal(d)
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Discovery
		if json.Unmarshal(data, &d) != nil {
			return
		}
		if d.Version == Version && len(d.Salt) == saltLen && len(d.MAC) == 32 {
			// Derivations are slow: keep the fuzzer on the parsing paths.
			d.Salt = d.Salt[:1]
		}
		_, _ = Verify("t", d)
		_, _ = Pool(d.CABundle)
	})
}

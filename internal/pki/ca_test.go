package pki

import (
	"bytes"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func mustCA(t testing.TB, cn string) *CA {
	t.Helper()
	ca, err := NewCA(cn, DefaultCAValidity, testNow)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

func TestNewCA(t *testing.T) {
	ca := mustCA(t, "example")
	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid {
		t.Errorf("IsCA=%v BasicConstraintsValid=%v, want both true", c.IsCA, c.BasicConstraintsValid)
	}
	if c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("MaxPathLen=%d MaxPathLenZero=%v, want 0 and true", c.MaxPathLen, c.MaxPathLenZero)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign; c.KeyUsage != want {
		t.Errorf("KeyUsage=%v, want %v", c.KeyUsage, want)
	}
	if len(c.SubjectKeyId) != 20 {
		t.Errorf("SubjectKeyId has %d bytes, want 20", len(c.SubjectKeyId))
	}
	if c.Subject.CommonName != "example" || c.Issuer.CommonName != "example" {
		t.Errorf("subject %q issuer %q, want self-signed example", c.Subject, c.Issuer)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if want := testNow.Add(DefaultCAValidity); !c.NotAfter.Equal(want) {
		t.Errorf("NotAfter=%v, want %v", c.NotAfter, want)
	}
	if c.NotBefore.After(testNow) {
		t.Errorf("NotBefore=%v after issuing time %v", c.NotBefore, testNow)
	}
	if !keyMatches(c, ca.Key) {
		t.Error("CA key does not match its certificate")
	}
	other := mustCA(t, "example")
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.Cmp(other.Cert.SerialNumber) == 0 {
		t.Errorf("serials %v and %v: want positive and distinct", c.SerialNumber, other.Cert.SerialNumber)
	}
}

func TestNewCAErrors(t *testing.T) {
	for _, tc := range []struct {
		name, cn string
		validity time.Duration
		want     string
	}{
		{"empty name", "", time.Hour, "empty common name"},
		{"zero validity", "x", 0, "validity must be positive"},
		{"negative validity", "x", -time.Hour, "validity must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewCA(tc.cn, tc.validity, testNow)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err=%v, want %q", err, tc.want)
			}
		})
	}
}

func TestIssueUsages(t *testing.T) {
	ca := mustCA(t, "cluster")
	for _, tc := range []struct {
		usage      Usage
		wantEKU    []x509.ExtKeyUsage
		okFor, not []Usage
	}{
		{UsageServer, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []Usage{UsageServer}, []Usage{UsageClient, UsageBoth}},
		{UsageClient, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, []Usage{UsageClient}, []Usage{UsageServer, UsageBoth}},
		{UsageBoth, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, []Usage{UsageServer, UsageClient, UsageBoth}, nil},
	} {
		t.Run(tc.usage.String(), func(t *testing.T) {
			kp, err := ca.Issue(Request{CommonName: "c", DNSNames: []string{"a.example"}, IPs: []net.IP{net.ParseIP("127.0.0.1")},
				Usages: tc.usage, Validity: time.Hour, Now: testNow})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(kp.Cert.ExtKeyUsage, tc.wantEKU) {
				t.Errorf("ExtKeyUsage=%v, want %v", kp.Cert.ExtKeyUsage, tc.wantEKU)
			}
			if kp.Cert.IsCA || kp.Cert.KeyUsage != x509.KeyUsageDigitalSignature {
				t.Errorf("IsCA=%v KeyUsage=%v, want a leaf with digitalSignature", kp.Cert.IsCA, kp.Cert.KeyUsage)
			}
			if !bytes.Equal(kp.Cert.AuthorityKeyId, ca.Cert.SubjectKeyId) {
				t.Errorf("AuthorityKeyId=%x, want the CA's SubjectKeyId %x", kp.Cert.AuthorityKeyId, ca.Cert.SubjectKeyId)
			}
			for _, u := range tc.okFor {
				if err := ca.Verify(kp.Cert, u, testNow); err != nil {
					t.Errorf("verify for %v: %v", u, err)
				}
			}
			for _, u := range tc.not {
				if err := ca.Verify(kp.Cert, u, testNow); err == nil {
					t.Errorf("verify for %v succeeded, want an ExtKeyUsage error", u)
				}
			}
		})
	}
}

func TestIssueErrors(t *testing.T) {
	ca := mustCA(t, "cluster")
	ok := Request{CommonName: "c", Usages: UsageClient, Validity: time.Hour, Now: testNow}
	for _, tc := range []struct {
		name string
		edit func(*Request)
		want string
	}{
		{"empty common name", func(r *Request) { r.CommonName = "" }, "empty common name"},
		{"no usage", func(r *Request) { r.Usages = 0 }, "invalid certificate usage"},
		{"unknown usage bit", func(r *Request) { r.Usages = 8 | UsageClient }, "invalid certificate usage"},
		{"zero validity", func(r *Request) { r.Validity = 0 }, "validity must be positive"},
		{"outlives CA", func(r *Request) { r.Validity = DefaultCAValidity + time.Hour }, "after its CA"},
		{"bad IP", func(r *Request) { r.IPs = []net.IP{{1, 2, 3}} }, "invalid IP address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			tc.edit(&r)
			_, err := ca.Issue(r)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err=%v, want %q", err, tc.want)
			}
		})
	}
	if _, err := ca.Issue(ok); err != nil {
		t.Fatalf("the unedited request fails: %v", err)
	}
}

func TestIssueSANsDeduplicated(t *testing.T) {
	ca := mustCA(t, "cluster")
	kp, err := ca.Issue(Request{CommonName: "c", Usages: UsageServer, Validity: time.Hour, Now: testNow,
		DNSNames: []string{"a", "b", "a"},
		IPs:      []net.IP{net.ParseIP("127.0.0.1"), net.IPv4(127, 0, 0, 1).To4(), net.ParseIP("::1")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(kp.Cert.DNSNames, ","); got != "a,b" {
		t.Errorf("DNSNames=%s, want a,b", got)
	}
	if got := ipStrings(kp.Cert.IPAddresses); got != "127.0.0.1,::1" {
		t.Errorf("IPAddresses=%s, want 127.0.0.1,::1", got)
	}
}

func TestOtherClusterCADoesNotVerify(t *testing.T) {
	ours, theirs := mustCA(t, "ours"), mustCA(t, "ours") // same name: only the key tells them apart
	kp, err := theirs.Issue(Request{CommonName: "admin", Usages: UsageBoth, Validity: time.Hour, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if err := theirs.Verify(kp.Cert, UsageClient, testNow); err != nil {
		t.Fatalf("does not verify against its own CA: %v", err)
	}
	err = ours.Verify(kp.Cert, UsageClient, testNow)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("verify against another cluster's CA: err=%v, want UnknownAuthorityError", err)
	}
}

func TestExpiryHonoured(t *testing.T) {
	ca := mustCA(t, "cluster")
	const validity = 48 * time.Hour
	kp, err := ca.Issue(Request{CommonName: "c", Usages: UsageClient, Validity: validity, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if want := testNow.Add(validity); !kp.Cert.NotAfter.Equal(want) {
		t.Fatalf("NotAfter=%v, want %v", kp.Cert.NotAfter, want)
	}
	for _, tc := range []struct {
		name    string
		at      time.Time
		expired bool
	}{
		{"at issue", testNow, false},
		{"clock a minute behind", testNow.Add(-time.Minute), false},
		{"last second", testNow.Add(validity - time.Second), false},
		{"a second late", testNow.Add(validity + time.Second), true},
		{"long before", testNow.Add(-time.Hour), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ca.Verify(kp.Cert, UsageClient, tc.at)
			var invalid x509.CertificateInvalidError
			if got := errors.As(err, &invalid) && invalid.Reason == x509.Expired; got != tc.expired {
				t.Fatalf("at %v: err=%v, want expired=%v", tc.at, err, tc.expired)
			}
			if !tc.expired && err != nil {
				t.Fatalf("at %v: %v", tc.at, err)
			}
		})
	}
}

func ipStrings(ips []net.IP) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ",")
}

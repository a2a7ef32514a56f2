package access

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opengravity/gravity/internal/pki"
)

func newCA(t *testing.T, name string) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(name, time.Hour*24, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func newPub(t *testing.T) ssh.PublicKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

type meta struct{ user string }

func (m meta) User() string          { return m.user }
func (m meta) SessionID() []byte     { return nil }
func (m meta) ClientVersion() []byte { return nil }
func (m meta) ServerVersion() []byte { return nil }
func (m meta) RemoteAddr() net.Addr  { return &net.TCPAddr{} }
func (m meta) LocalAddr() net.Addr   { return &net.TCPAddr{} }

func TestUserCertificates(t *testing.T) {
	users, other := newCA(t, "users"), newCA(t, "other")
	now := time.Now()
	pub := newPub(t)
	cert, x, err := SignUser(users, pub, User{Name: "alice", UID: "u-1", Logins: []string{"root"}, TTL: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if name, uid, err := X509User(x); err != nil || name != "alice" || uid != "u-1" {
		t.Errorf("X509User = %q %q %v", name, uid, err)
	}
	if err := users.Verify(x, pki.UsageClient, now); err != nil {
		t.Errorf("x509 certificate does not verify: %v", err)
	}
	if _, ok := cert.Extensions[ExtProxied]; ok {
		t.Error("a user certificate carries the proxy's extension")
	}
	userCA, _ := Signer(users)
	otherCA, _ := Signer(other)
	for _, tc := range []struct {
		name  string
		ca    ssh.PublicKey
		login string
		at    time.Time
		ok    bool
	}{
		{"valid", userCA.PublicKey(), "root", now, true},
		{"other login", userCA.PublicKey(), "admin", now, false},
		{"other CA", otherCA.PublicKey(), "root", now, false},
		{"expired", userCA.PublicKey(), "root", now.Add(2 * time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := UserChecker(tc.ca, func() time.Time { return tc.at }).Authenticate(meta{tc.login}, cert)
			if (err == nil) != tc.ok {
				t.Errorf("Authenticate = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	if _, _, err := SignUser(users, pub, User{Name: "alice", TTL: time.Hour}); err == nil {
		t.Error("a certificate without the record's ID was signed")
	}
}

func TestHostChecker(t *testing.T) {
	hosts, users := newCA(t, "hosts"), newCA(t, "users")
	pub := newPub(t)
	cert, err := SignHost(hosts, pub, []string{"node-1", "10.0.0.1"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	forged, err := SignHost(users, pub, []string{"10.0.0.1"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	hostCA, _ := Signer(hosts)
	check := HostChecker(hostCA.PublicKey())
	addr := &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 3022}
	for _, tc := range []struct {
		name, addr string
		key        ssh.PublicKey
		want       string
	}{
		{"by address", "10.0.0.1:3022", cert, ""},
		{"by name", "node-1:3022", cert, ""},
		{"other address", "10.0.0.2:3022", cert, "not a node of this cluster"},
		{"plain key", "10.0.0.1:3022", pub, "plain key"},
		{"other CA", "10.0.0.1:3022", forged, "not a node of this cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := check(tc.addr, addr, tc.key)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("check = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestProxyCert(t *testing.T) {
	users := newCA(t, "users")
	cert, err := ProxyCert(users, newPub(t), "alice", "root", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cert.Extensions[ExtProxied]; !ok || len(cert.ValidPrincipals) != 1 || cert.ValidPrincipals[0] != "root" {
		t.Errorf("proxy certificate: %+v", cert)
	}
	if life := time.Duration(cert.ValidBefore-uint64(time.Now().Unix())) * time.Second; life > time.Minute+time.Second {
		t.Errorf("the hop's certificate lasts %v", life)
	}
}

// Package access is the certificates and the wire conventions of access to
// nodes and Kubernetes with short-lived certificates (`tsh`): what the
// users CA signs for a user at login, what the hosts CA signs for a node,
// and how the access proxy, the node SSH service and tsh check them. It is
// pure: it signs and checks, and keeps nothing.
//
// Contract: a user certificate names the user, the unique ID of their
// record and their logins, and lasts the session TTL of their roles; a
// certificate the proxy makes for the hop to a node carries ExtProxied,
// which no user certificate ever does, and nodes accept no other.
package access

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opengravity/gravity/internal/pki"
)

// Ports, as Gravity's (Teleport's): the node SSH service, the SSH proxy
// and the Kubernetes proxy.
const (
	NodeSSHPort  = 3022
	ProxySSHPort = 3023
	KubePort     = 3026
)

// Certificate extensions and options of user certificates.
const (
	// ExtUserUID is the unique ID of the user's record at login.
	ExtUserUID = "uid@gravity.opengravity.io"
	// ExtProxied marks the certificate the access proxy makes for its
	// hop to a node; nodes accept no other.
	ExtProxied = "proxied@gravity.opengravity.io"
	// ChannelSession is the channel tsh opens on the proxy for a session
	// on a node; its extra data is the node (an ssh string).
	ChannelSession = "session@gravity.opengravity.io"
)

// SessionRequest is the extra data of a ChannelSession.
type SessionRequest struct {
	Node string
}

// clockSkew backdates certificates, as pki does.
const clockSkew = 5 * time.Minute

// User is whom a user certificate is for.
type User struct {
	Name string
	// UID is the unique ID of the user's record (cluster.UserUID).
	UID    string
	Logins []string
	TTL    time.Duration
	Now    time.Time
}

// Signer is a CA's key as an SSH signer.
func Signer(ca *pki.CA) (ssh.Signer, error) {
	s, err := ssh.NewSignerFromSigner(ca.Key)
	if err != nil {
		return nil, fmt.Errorf("CA %q as an SSH signer: %w", ca.Cert.Subject.CommonName, err)
	}
	return s, nil
}

// AuthorizedKey is a CA's public key in authorized_keys form.
func AuthorizedKey(ca *pki.CA) (string, error) {
	s, err := Signer(ca)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))), nil
}

// signCert gives cert a random serial and signs it with ca.
func signCert(ca *pki.CA, cert *ssh.Certificate) error {
	signer, err := Signer(ca)
	if err != nil {
		return err
	}
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		return err
	}
	cert.Serial = n.Uint64()
	return cert.SignCert(rand.Reader, signer)
}

// SignUser signs an SSH user certificate and an x509 client certificate
// (for the Kubernetes proxy) over pub for u.
func SignUser(ca *pki.CA, pub ssh.PublicKey, u User) (*ssh.Certificate, *x509.Certificate, error) {
	if u.Name == "" || u.UID == "" || u.TTL <= 0 {
		return nil, nil, errors.New("user certificate: no user, record ID or TTL")
	}
	if u.Now.IsZero() {
		u.Now = time.Now()
	}
	cert := &ssh.Certificate{Key: pub, CertType: ssh.UserCert, KeyId: u.Name,
		ValidPrincipals: slices.Clone(u.Logins),
		ValidAfter:      uint64(u.Now.Add(-clockSkew).Unix()), ValidBefore: uint64(u.Now.Add(u.TTL).Unix()),
		Permissions: ssh.Permissions{Extensions: map[string]string{
			"permit-pty": "", ExtUserUID: u.UID,
		}}}
	if err := signCert(ca, cert); err != nil {
		return nil, nil, fmt.Errorf("signing the SSH certificate of %s: %w", u.Name, err)
	}
	cpk, ok := pub.(ssh.CryptoPublicKey)
	if !ok {
		return nil, nil, fmt.Errorf("key type %s cannot have an x509 certificate", pub.Type())
	}
	// The x509 certificate names the record's ID as its organizational
	// unit; its groups are never taken from it, but read on each request.
	x, err := ca.IssueFor(pki.Request{CommonName: u.Name, Organization: []string{"uid:" + u.UID}, Usages: pki.UsageClient,
		Validity: u.TTL, Now: u.Now}, cpk.CryptoPublicKey())
	if err != nil {
		return nil, nil, fmt.Errorf("signing the x509 certificate of %s: %w", u.Name, err)
	}
	return cert, x, nil
}

// X509User is the user and the record ID an x509 user certificate names.
func X509User(c *x509.Certificate) (name, uid string, err error) {
	for _, o := range c.Subject.Organization {
		if v, ok := strings.CutPrefix(o, "uid:"); ok {
			return c.Subject.CommonName, v, nil
		}
	}
	return "", "", fmt.Errorf("certificate %q is not a user's", c.Subject.CommonName)
}

// SignHost signs an SSH host certificate over pub for the node known by
// principals (its name, address, host name).
func SignHost(ca *pki.CA, pub ssh.PublicKey, principals []string, ttl time.Duration, now time.Time) (*ssh.Certificate, error) {
	if len(principals) == 0 {
		return nil, errors.New("host certificate: no principals")
	}
	cert := &ssh.Certificate{Key: pub, CertType: ssh.HostCert, KeyId: principals[0], ValidPrincipals: principals,
		ValidAfter: uint64(now.Add(-clockSkew).Unix()), ValidBefore: uint64(now.Add(ttl).Unix())}
	if err := signCert(ca, cert); err != nil {
		return nil, fmt.Errorf("signing the host certificate of %s: %w", principals[0], err)
	}
	return cert, nil
}

// ProxyCert is the certificate the access proxy makes for its hop to a
// node on behalf of a user it has checked: ExtProxied and one login,
// lasting a minute (the SSH handshake happens at once).
func ProxyCert(ca *pki.CA, pub ssh.PublicKey, user, login string, now time.Time) (*ssh.Certificate, error) {
	cert := &ssh.Certificate{Key: pub, CertType: ssh.UserCert, KeyId: user, ValidPrincipals: []string{login},
		ValidAfter: uint64(now.Add(-clockSkew).Unix()), ValidBefore: uint64(now.Add(time.Minute).Unix()),
		Permissions: ssh.Permissions{Extensions: map[string]string{"permit-pty": "", ExtProxied: ""}}}
	if err := signCert(ca, cert); err != nil {
		return nil, fmt.Errorf("signing the proxy's certificate for %s: %w", user, err)
	}
	return cert, nil
}

// HostChecker verifies host certificates of the hosts CA: the host's
// address must be one of the certificate's principals.
func HostChecker(hostCA ssh.PublicKey) ssh.HostKeyCallback {
	c := &ssh.CertChecker{IsHostAuthority: func(auth ssh.PublicKey, _ string) bool { return keysEqual(auth, hostCA) }}
	return func(addr string, remote net.Addr, key ssh.PublicKey) error {
		if _, ok := key.(*ssh.Certificate); !ok {
			return fmt.Errorf("host %s presented a plain key, not a certificate of the cluster's hosts CA: it is not a node of this cluster", addr)
		}
		if err := c.CheckHostKey(addr, remote, key); err != nil {
			return fmt.Errorf("host %s is not a node of this cluster: %w", addr, err)
		}
		return nil
	}
}

// UserChecker verifies user certificates of the users CA.
func UserChecker(userCA ssh.PublicKey, now func() time.Time) *ssh.CertChecker {
	return &ssh.CertChecker{IsUserAuthority: func(auth ssh.PublicKey) bool { return keysEqual(auth, userCA) }, Clock: now}
}

// ParseAuthorizedKey reads one authorized_keys line.
func ParseAuthorizedKey(line string) (ssh.PublicKey, error) {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return k, nil
}

// PublicKeyOf is a crypto key's SSH form.
func PublicKeyOf(k crypto.PublicKey) (ssh.PublicKey, error) { return ssh.NewPublicKey(k) }

func keysEqual(a, b ssh.PublicKey) bool {
	return a.Type() == b.Type() && string(a.Marshal()) == string(b.Marshal())
}

// handshakeTimeout bounds an SSH handshake: a client that connects and
// says nothing does not hold a goroutine and a socket for ever.
const handshakeTimeout = 30 * time.Second

// Serve accepts SSH connections on ln until ctx ends or ln is closed,
// and hands each new channel to handle (in its own goroutine); global
// requests are refused. name says who serves, in logs.
func Serve(ctx context.Context, ln net.Listener, cfg *ssh.ServerConfig, log *slog.Logger, name string,
	handle func(conn *ssh.ServerConn, nc ssh.NewChannel)) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%s: %w", name, err)
		}
		go func() {
			_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
			conn, chans, reqs, err := ssh.NewServerConn(c, cfg)
			if err != nil {
				log.Info(name+": handshake failed", "remote", c.RemoteAddr().String(), "error", err.Error())
				c.Close()
				return
			}
			_ = c.SetDeadline(time.Time{})
			defer conn.Close()
			go ssh.DiscardRequests(reqs)
			for nc := range chans {
				go handle(conn, nc)
			}
		}()
	}
}

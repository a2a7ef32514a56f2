package pki

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// TestMutualTLS runs real handshakes over loopback: a server certificate and
// client certificates from the cluster CA, and impostors.
func TestMutualTLS(t *testing.T) {
	now := time.Now() // the TLS stack checks validity against the real clock
	cs, err := NewCASet("ours", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCASet("ours", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ca *CA, u Usage) *KeyPair {
		kp, err := ca.Issue(Request{CommonName: "c", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
			Usages: u, Validity: 30 * time.Minute, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	server := issue(cs.Cluster, UsageServer)
	for _, tc := range []struct {
		name       string
		client     *KeyPair
		serverName string
		roots      *CA
		ok         bool
	}{
		{"client from the cluster CA", issue(cs.Cluster, UsageClient), "127.0.0.1", cs.Cluster, true},
		{"by name", issue(cs.Cluster, UsageClient), "localhost", cs.Cluster, true},
		{"client from another cluster's CA", issue(other.Cluster, UsageClient), "127.0.0.1", cs.Cluster, false},
		{"client from the etcd CA", issue(cs.Etcd, UsageClient), "127.0.0.1", cs.Cluster, false},
		{"server-only certificate as client", issue(cs.Cluster, UsageServer), "127.0.0.1", cs.Cluster, false},
		{"no client certificate", nil, "127.0.0.1", cs.Cluster, false},
		{"client trusts another CA", issue(cs.Cluster, UsageClient), "127.0.0.1", other.Cluster, false},
		{"name not in the certificate", issue(cs.Cluster, UsageClient), "registry.local", cs.Cluster, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := handshake(t, server, cs.Cluster, tc.client, tc.roots, tc.serverName)
			if tc.ok && err != nil {
				t.Fatalf("handshake failed: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatal("handshake succeeded, want it refused")
			}
		})
	}
}

// handshake serves one connection with server, requiring a client
// certificate from clientCA, and dials it with client trusting roots. It
// returns the first error either side saw.
func handshake(t *testing.T, server *KeyPair, clientCA *CA, client *KeyPair, roots *CA, serverName string) error {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{server.TLSCertificate()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCA.Pool(),
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if err := conn.(*tls.Conn).Handshake(); err != nil {
			served <- err
			return
		}
		_, err = conn.Write([]byte("ok"))
		served <- err
	}()
	cfg := &tls.Config{RootCAs: roots.Pool(), ServerName: serverName, MinVersion: tls.VersionTLS12}
	if client != nil {
		cfg.Certificates = []tls.Certificate{client.TLSCertificate()}
	}
	clientErr := dialAndRead(ln.Addr().String(), cfg)
	serverErr := <-served
	if clientErr != nil {
		return clientErr
	}
	return serverErr
}

func dialAndRead(addr string, cfg *tls.Config) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	// With TLS 1.3 the server rejects the client certificate after the
	// client's handshake is done: only the read shows it.
	buf := make([]byte, 2)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return err
	}
	return nil
}

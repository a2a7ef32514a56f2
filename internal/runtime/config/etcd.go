package config

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/opengravity/gravity/internal/pki"
)

// Ports of the services.
const (
	EtcdClientPort = 2379
	EtcdPeerPort   = 2380
	APIServerPort  = 6443
	RegistryPort   = 5000
)

// ClusterState is etcd's --initial-cluster-state: ClusterStateNew when the
// cluster is bootstrapped, ClusterStateExisting when a member joins one
// (after it was added with MemberAdd).
type ClusterState string

const (
	ClusterStateNew      ClusterState = "new"
	ClusterStateExisting ClusterState = "existing"
)

// EtcdMemberName is the etcd member name of the master at ip: its node
// name, which Gravity makes the advertise IP.
func EtcdMemberName(ip net.IP) string { return ip.String() }

func hostPort(ip net.IP, port int) string { return net.JoinHostPort(ip.String(), fmt.Sprint(port)) }

func httpsURL(ip net.IP, port int) string { return "https://" + hostPort(ip, port) }

var loopback = net.IPv4(127, 0, 0, 1).To4()

// EtcdArgs are etcd's flags on master n: clients and peers both need a
// certificate from the etcd CA, and etcd listens on the node IP and
// loopback only.
func EtcdArgs(n Node, state ClusterState) ([]string, error) {
	n, err := n.WithDefaults()
	if err != nil {
		return nil, err
	}
	if !n.IsMaster() {
		return nil, errors.New("etcd: only masters run etcd")
	}
	if state != ClusterStateNew && state != ClusterStateExisting {
		return nil, fmt.Errorf("etcd: initial cluster state %q (want new or existing)", state)
	}
	p := n.Paths()
	var peers []string
	for _, ip := range n.MasterIPs {
		peers = append(peers, EtcdMemberName(ip)+"="+httpsURL(ip, EtcdPeerPort))
	}
	etcdCA := p.Cert(pki.EtcdCAName)
	return []string{
		"--name=" + EtcdMemberName(n.IP),
		"--data-dir=" + p.EtcdData,
		"--listen-client-urls=" + httpsURL(n.IP, EtcdClientPort) + "," + httpsURL(loopback, EtcdClientPort),
		"--advertise-client-urls=" + httpsURL(n.IP, EtcdClientPort),
		"--listen-peer-urls=" + httpsURL(n.IP, EtcdPeerPort),
		"--initial-advertise-peer-urls=" + httpsURL(n.IP, EtcdPeerPort),
		"--initial-cluster=" + strings.Join(peers, ","),
		"--initial-cluster-state=" + string(state),
		"--initial-cluster-token=" + n.ClusterName,
		"--cert-file=" + p.Cert(pki.EtcdServer),
		"--key-file=" + p.Key(pki.EtcdServer),
		"--client-cert-auth=true",
		"--trusted-ca-file=" + etcdCA,
		"--peer-cert-file=" + p.Cert(pki.EtcdPeer),
		"--peer-key-file=" + p.Key(pki.EtcdPeer),
		"--peer-client-cert-auth=true",
		"--peer-trusted-ca-file=" + etcdCA,
		"--snapshot-count=10000",
		"--tls-min-version=" + etcdTLSMinVersion,
		"--cipher-suites=" + strings.Join(tlsCipherSuites, ","),
	}, nil
}

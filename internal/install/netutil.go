package install

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func x509Pool(certs ...*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}

// advertiseAddr checks --advertise-addr or picks this node's address: the
// only global IPv4 address of an interface that is up. With several, the
// user must choose, as in Gravity.
func advertiseAddr(flag string) (string, error) {
	addrs, err := hostAddrs()
	if err != nil {
		return "", err
	}
	if flag != "" {
		ip := net.ParseIP(flag)
		if ip == nil || ip.To4() == nil {
			return "", fmt.Errorf("--advertise-addr=%s: not an IPv4 address", flag)
		}
		for _, a := range addrs {
			if a == ip.String() {
				return a, nil
			}
		}
		return "", fmt.Errorf("--advertise-addr=%s: no interface of this node has that address (it has %s)", flag, strings.Join(addrs, ", "))
	}
	switch len(addrs) {
	case 0:
		return "", fmt.Errorf("this node has no IPv4 address to advertise: set --advertise-addr")
	case 1:
		return addrs[0], nil
	}
	return "", fmt.Errorf("this node has several addresses (%s): choose one with --advertise-addr", strings.Join(addrs, ", "))
}

func hostAddrs() ([]string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || strings.HasPrefix(ifc.Name, "gravity") {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				out = append(out, ipn.IP.String())
			}
		}
	}
	return out, nil
}

// nodeSubnet is the i-th /24 of the pod network: each node's share.
func nodeSubnet(podCIDR string, i int) (string, error) {
	pfx, err := netip.ParsePrefix(podCIDR)
	if err != nil || !pfx.Addr().Is4() {
		return "", fmt.Errorf("--pod-network-cidr=%s: not an IPv4 CIDR", podCIDR)
	}
	if pfx.Bits() > 23 {
		return "", fmt.Errorf("--pod-network-cidr=%s: too small, want /23 or larger (each node takes a /24)", podCIDR)
	}
	if pfx.Masked() != pfx {
		return "", fmt.Errorf("--pod-network-cidr=%s: host bits set (did you mean %s?)", podCIDR, pfx.Masked())
	}
	a := pfx.Addr().As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	n += uint32(i) << 8
	sub := netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	return netip.PrefixFrom(sub, 24).String(), nil
}

// clusterName makes a name like Gravity's: an adjective, a noun, digits.
func clusterName() string {
	adj := []string{"brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry", "noble", "proud", "quiet", "swift", "witty"}
	noun := []string{"badger", "comet", "falcon", "galaxy", "harbor", "island", "lagoon", "meadow", "nebula", "orbit", "planet", "quasar", "river", "summit", "tundra"}
	return fmt.Sprintf("%s%s%04d", adj[rand.IntN(len(adj))], noun[rand.IntN(len(noun))], rand.IntN(10000))
}

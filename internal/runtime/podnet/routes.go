package podnet

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// Peer is a node as the agent sees it in the API.
type Peer struct {
	Name    string
	IP      netip.Addr   // the node's InternalIP
	PodCIDR netip.Prefix // the pod subnet it announced
}

// Route sends traffic for Dst (another node's pods) to Via (that node).
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

func (r Route) String() string { return r.Dst.String() + " via " + r.Via.String() }

// Desired is the routes node self needs to the pods of every other peer,
// ordered by destination. A peer that cannot be routed to (no address, no
// subnet, a subnet outside cluster, overlapping self's or claimed by
// another node first in name order) is left out and reported in skipped:
// one bad node must not cut the others off, nor a route shadow the node's
// own bridge. self's entry in peers, if any, is ignored: its own subnet is
// what it was configured with.
func Desired(self Peer, cluster netip.Prefix, peers []Peer) (routes []Route, skipped []error) {
	peers = slices.Clone(peers)
	slices.SortFunc(peers, func(a, b Peer) int { return cmp.Compare(a.Name, b.Name) })
	claimed := []Peer{self}
	for _, p := range peers {
		if p.Name == self.Name {
			continue
		}
		if err := checkPeer(p, cluster, claimed); err != nil {
			skipped = append(skipped, fmt.Errorf("node %s: %w", p.Name, err))
			continue
		}
		claimed = append(claimed, p)
		routes = append(routes, Route{Dst: p.PodCIDR, Via: p.IP})
	}
	slices.SortFunc(routes, compareRoutes)
	return routes, skipped
}

func checkPeer(p Peer, cluster netip.Prefix, claimed []Peer) error {
	switch {
	case !p.IP.Is4():
		return fmt.Errorf("no IPv4 InternalIP")
	case !p.PodCIDR.IsValid() || !p.PodCIDR.Addr().Is4():
		return fmt.Errorf("no pod subnet announced")
	case p.PodCIDR != p.PodCIDR.Masked():
		return fmt.Errorf("pod subnet %s has host bits set", p.PodCIDR)
	case p.PodCIDR.Bits() < cluster.Bits() || !cluster.Contains(p.PodCIDR.Addr()):
		return fmt.Errorf("pod subnet %s is not inside the pod network %s", p.PodCIDR, cluster)
	}
	for _, c := range claimed {
		if c.PodCIDR.Overlaps(p.PodCIDR) {
			return fmt.Errorf("pod subnet %s overlaps %s of node %s", p.PodCIDR, c.PodCIDR, c.Name)
		}
		if c.IP == p.IP {
			return fmt.Errorf("address %s is also node %s's", p.IP, c.Name)
		}
	}
	return nil
}

func compareRoutes(a, b Route) int {
	if c := a.Dst.Addr().Compare(b.Dst.Addr()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Dst.Bits(), b.Dst.Bits()); c != 0 {
		return c
	}
	return a.Via.Compare(b.Via)
}

// Diff is what turns the routes the agent owns now into want: routes to
// replace (new, or with a new next hop) and routes to delete.
func Diff(have, want []Route) (replace, remove []Route) {
	wanted := map[netip.Prefix]netip.Addr{}
	for _, r := range want {
		wanted[r.Dst] = r.Via
	}
	current := map[netip.Prefix]netip.Addr{}
	for _, r := range have {
		current[r.Dst] = r.Via
		if _, ok := wanted[r.Dst]; !ok {
			remove = append(remove, r)
		}
	}
	for _, r := range want {
		if via, ok := current[r.Dst]; !ok || via != r.Via {
			replace = append(replace, r)
		}
	}
	slices.SortFunc(replace, compareRoutes)
	slices.SortFunc(remove, compareRoutes)
	return replace, remove
}

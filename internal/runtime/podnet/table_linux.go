package podnet

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RouteProtocol marks the routes the agent owns (rtm_protocol): it lists,
// replaces and deletes only those, never a route someone else made.
// Values above RTPROT_STATIC mean nothing to the kernel; 0x67 ("g") is not
// one iproute2 names.
const RouteProtocol = 0x67

// Table is the kernel's main routing table, as far as the agent's routes
// go. A zero Table uses the calling thread's network namespace.
type Table struct {
	h *netlink.Handle
}

// NewTable opens a netlink handle in the current network namespace.
func NewTable() (*Table, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &Table{h: h}, nil
}

// Close releases the handle.
func (t *Table) Close() { t.h.Close() }

// List returns the IPv4 routes of the main table the agent owns.
func (t *Table) List() ([]Route, error) {
	filter := &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
	rs, err := t.h.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var out []Route
	for _, r := range rs {
		if r.Dst == nil {
			continue
		}
		dst, ok1 := netip.AddrFromSlice(r.Dst.IP.To4())
		via, ok2 := netip.AddrFromSlice(r.Gw.To4())
		if !ok1 || !ok2 {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		out = append(out, Route{Dst: netip.PrefixFrom(dst, ones), Via: via})
	}
	return out, nil
}

// Replace adds r or changes its next hop. The kernel picks the interface
// that reaches Via, which must be on a directly connected network.
func (t *Table) Replace(r Route) error {
	if err := t.h.RouteReplace(kernelRoute(r)); err != nil {
		return fmt.Errorf("route %s: %w", r, err)
	}
	return nil
}

// Delete removes r.
func (t *Table) Delete(r Route) error {
	if err := t.h.RouteDel(kernelRoute(r)); err != nil {
		return fmt.Errorf("delete route %s: %w", r, err)
	}
	return nil
}

func kernelRoute(r Route) *netlink.Route {
	return &netlink.Route{
		Dst:      &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), 32)},
		Gw:       r.Via.AsSlice(),
		Protocol: RouteProtocol,
		Table:    unix.RT_TABLE_MAIN,
	}
}

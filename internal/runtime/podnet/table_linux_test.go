package podnet

import (
	"net"
	"os"
	"reflect"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestTable programs routes in a network namespace of its own: the
// goroutine's thread moves into it and dies with the goroutine, so the
// machine's routes are never touched.
func TestTable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Error(err)
			return
		}
		testTableInNetns(t)
	}()
	<-done
}

func testTableInNetns(t *testing.T) {
	// A veth pair, both ends here: it has a carrier once up (a dummy link
	// would do, but not every kernel has the module).
	dummy := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "pn0"}, PeerName: "pn1"}
	if err := netlink.LinkAdd(dummy); err != nil {
		t.Error(err)
		return
	}
	addr, _ := netlink.ParseAddr("10.0.0.2/24")
	if err := netlink.AddrAdd(dummy, addr); err != nil {
		t.Error(err)
		return
	}
	for _, name := range []string{"pn0", "pn1"} {
		l, err := netlink.LinkByName(name)
		if err == nil {
			err = netlink.LinkSetUp(l)
		}
		if err != nil {
			t.Error(err)
			return
		}
	}
	// A route that is not the agent's, to the same kind of destination.
	_, dst, _ := net.ParseCIDR("10.244.8.0/24")
	foreign := &netlink.Route{Dst: dst, Gw: net.IPv4(10, 0, 0, 8)}
	if err := netlink.RouteAdd(foreign); err != nil {
		t.Error(err)
		return
	}
	tab, err := NewTable()
	if err != nil {
		t.Error(err)
		return
	}
	defer tab.Close()
	steps := []struct {
		do   func() error
		want []Route
	}{
		{func() error { return nil }, nil},
		{func() error { return tab.Replace(route("10.244.2.0/24", "10.0.0.3")) }, []Route{route("10.244.2.0/24", "10.0.0.3")}},
		{func() error { return tab.Replace(route("10.244.2.0/24", "10.0.0.4")) }, []Route{route("10.244.2.0/24", "10.0.0.4")}},
		{func() error { return tab.Delete(route("10.244.2.0/24", "10.0.0.4")) }, nil},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Errorf("step %d: %v", i, err)
			return
		}
		got, err := tab.List()
		if err != nil || !reflect.DeepEqual(got, s.want) {
			t.Errorf("step %d: List = %v, %v; want %v", i, got, err, s.want)
		}
	}
	if err := tab.Replace(route("10.244.3.0/24", "10.9.9.9")); err == nil {
		t.Error("a next hop on no connected network was accepted")
	}
}

package podnet

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var cluster = netip.MustParsePrefix("10.244.0.0/16")

func peer(name, ip, cidr string) Peer {
	p := Peer{Name: name}
	if ip != "" {
		p.IP = netip.MustParseAddr(ip)
	}
	if cidr != "" {
		p.PodCIDR = netip.MustParsePrefix(cidr)
	}
	return p
}

func route(dst, via string) Route {
	return Route{Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via)}
}

func TestDesired(t *testing.T) {
	a := peer("a", "10.0.0.2", "10.244.1.0/24")
	b := peer("b", "10.0.0.3", "10.244.2.0/24")
	c := peer("c", "10.0.0.4", "10.244.3.0/24")
	tests := []struct {
		name    string
		peers   []Peer
		want    []Route
		skipped []string
	}{
		{"alone", []Peer{a}, nil, nil},
		{"others, sorted by destination", []Peer{c, a, b}, []Route{route("10.244.2.0/24", "10.0.0.3"), route("10.244.3.0/24", "10.0.0.4")}, nil},
		{"no subnet yet", []Peer{a, peer("b", "10.0.0.3", "")}, nil, []string{"node b: no pod subnet"}},
		{"no address", []Peer{a, peer("b", "", "10.244.2.0/24")}, nil, []string{"node b: no IPv4"}},
		{"outside the pod network", []Peer{a, peer("b", "10.0.0.3", "10.9.0.0/24")}, nil, []string{"not inside"}},
		{"wider than the pod network", []Peer{a, peer("b", "10.0.0.3", "10.0.0.0/8")}, nil, []string{"not inside"}},
		{"host bits", []Peer{a, peer("b", "10.0.0.3", "10.244.2.1/24")}, nil, []string{"host bits"}},
		{"overlap: first by name wins", []Peer{peer("z", "10.0.0.9", "10.244.2.0/23"), a, b},
			[]Route{route("10.244.2.0/24", "10.0.0.3")}, []string{"node z: pod subnet 10.244.2.0/23 overlaps"}},
		{"same address twice", []Peer{a, b, peer("d", "10.0.0.3", "10.244.4.0/24")},
			[]Route{route("10.244.2.0/24", "10.0.0.3")}, []string{"node d: address 10.0.0.3"}},
		{"another claiming self's subnet", []Peer{peer("0", "10.0.0.9", "10.244.1.128/25"), a},
			nil, []string{"node 0: pod subnet 10.244.1.128/25 overlaps 10.244.1.0/24 of node a"}},
		{"self as the API has it is ignored", []Peer{peer("a", "10.0.0.2", "10.244.7.0/24"), b},
			[]Route{route("10.244.2.0/24", "10.0.0.3")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, skipped := Desired(a, cluster, tt.peers)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("routes = %v, want %v", got, tt.want)
			}
			if len(skipped) != len(tt.skipped) {
				t.Fatalf("skipped = %v, want %d matching %q", skipped, len(tt.skipped), tt.skipped)
			}
			for i, s := range tt.skipped {
				if !strings.Contains(skipped[i].Error(), s) {
					t.Errorf("skipped[%d] = %v, want it to contain %q", i, skipped[i], s)
				}
			}
		})
	}
}

func TestDiff(t *testing.T) {
	r1, r2 := route("10.244.2.0/24", "10.0.0.3"), route("10.244.3.0/24", "10.0.0.4")
	moved := route("10.244.3.0/24", "10.0.0.9")
	tests := []struct {
		name            string
		have, want      []Route
		replace, remove []Route
	}{
		{"nothing", nil, nil, nil, nil},
		{"add", nil, []Route{r2, r1}, []Route{r1, r2}, nil},
		{"in place", []Route{r1, r2}, []Route{r2, r1}, nil, nil},
		{"node gone", []Route{r1, r2}, []Route{r1}, nil, []Route{r2}},
		{"node moved", []Route{r1, r2}, []Route{r1, moved}, []Route{moved}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			replace, remove := Diff(tt.have, tt.want)
			if !reflect.DeepEqual(replace, tt.replace) || !reflect.DeepEqual(remove, tt.remove) {
				t.Errorf("Diff = %v, %v; want %v, %v", replace, remove, tt.replace, tt.remove)
			}
		})
	}
}

func TestPeerFromNode(t *testing.T) {
	node := func(ann, spec string, addrs ...corev1.NodeAddress) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Spec: corev1.NodeSpec{PodCIDR: spec},
			Status: corev1.NodeStatus{Addresses: addrs}}
		if ann != "" {
			n.Annotations = map[string]string{AnnotationPodCIDR: ann}
		}
		return n
	}
	internal := corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.3"}
	tests := []struct {
		name string
		node *corev1.Node
		want Peer
	}{
		{"annotated", node("10.244.2.0/24", "", internal), peer("n", "10.0.0.3", "10.244.2.0/24")},
		{"annotation before spec", node("10.244.2.0/24", "10.244.9.0/24", internal), peer("n", "10.0.0.3", "10.244.2.0/24")},
		{"spec only", node("", "10.244.9.0/24", internal), peer("n", "10.0.0.3", "10.244.9.0/24")},
		{"garbage annotation", node("pods", "", internal), peer("n", "10.0.0.3", "")},
		{"hostname and IPv6 skipped", node("10.244.2.0/24", "",
			corev1.NodeAddress{Type: corev1.NodeHostName, Address: "10.0.0.7"},
			corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "fd00::3"}, internal), peer("n", "10.0.0.3", "10.244.2.0/24")},
		{"no address", node("10.244.2.0/24", ""), peer("n", "", "10.244.2.0/24")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PeerFromNode(tt.node); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzDesired(f *testing.F) {
	f.Add("10.244.1.0/24", "10.0.0.2", "10.244.2.0/23", "10.0.0.3")
	f.Fuzz(func(t *testing.T, c1, ip1, c2, ip2 string) {
		n1 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a", Annotations: map[string]string{AnnotationPodCIDR: c1}},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip1}}}}
		n2 := n1.DeepCopy()
		n2.Name, n2.Annotations[AnnotationPodCIDR], n2.Status.Addresses[0].Address = "b", c2, ip2
		routes, _ := Desired(peer("self", "10.0.0.1", "10.244.0.0/24"), cluster, []Peer{PeerFromNode(n1), PeerFromNode(n2)})
		for _, r := range routes {
			if !cluster.Contains(r.Dst.Addr()) || r.Dst.Bits() < cluster.Bits() || !r.Via.Is4() {
				t.Fatalf("route %v escapes the pod network or has no next hop", r)
			}
		}
		for _, r := range routes {
			if r.Dst.Overlaps(netip.MustParsePrefix("10.244.0.0/24")) {
				t.Fatalf("route %v shadows the node's own subnet", r)
			}
		}
	})
}

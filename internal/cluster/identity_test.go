package cluster

import (
	"regexp"
	"testing"

	"github.com/opengravity/gravity/internal/resources"
)

func TestObjectName(t *testing.T) {
	dns := regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$`)
	seen := map[string]string{}
	for _, name := range []string{"admin", "agent@example.com", "Agent@example.com", "agent-example.com", "a_b", "@teleadmin",
		"very-long-name-that-goes-on-and-on-and-on-past-sixty-three-characters-of-length"} {
		got := ObjectName(name)
		if !dns.MatchString(got) {
			t.Errorf("ObjectName(%q) = %q: not a Kubernetes name", name, got)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("ObjectName(%q) = ObjectName(%q) = %q", name, other, got)
		}
		seen[got] = name
	}
	if got := ObjectName("admin"); got != "admin" {
		t.Errorf("ObjectName(admin) = %q", got)
	}
}

func TestPublicEndpoints(t *testing.T) {
	eps := []Endpoint{{Name: EndpointGateway, URLs: []string{"10.0.0.1:32009"}}, {Name: EndpointManagement, URLs: []string{"https://10.0.0.1:32009"}},
		{Name: "Kubernetes API", URLs: []string{"https://10.0.0.1:6443"}}}
	got := publicEndpoints(eps, &resources.AuthGatewaySpec{PublicAddr: []string{"cluster.example.com"}, WebPublicAddr: []string{"web.example.com:443"}})
	if got[0].URLs[0] != "cluster.example.com:32009" || got[1].URLs[0] != "https://web.example.com:443" || got[2].URLs[0] != "https://10.0.0.1:6443" {
		t.Errorf("endpoints = %+v", got)
	}
	got = publicEndpoints([]Endpoint{{Name: EndpointManagement, URLs: []string{"https://10.0.0.1:32009"}}}, &resources.AuthGatewaySpec{})
	if got[0].URLs[0] != "https://10.0.0.1:32009" {
		t.Errorf("with no public address: %+v", got)
	}
}

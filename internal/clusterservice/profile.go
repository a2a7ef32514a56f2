package clusterservice

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/manifest"
)

// ProfileResponse is the role a joining node would get, and the profile
// whose preflight checks it runs before it asks to join.
type ProfileResponse struct {
	Role    string                `json:"role"`
	Master  bool                  `json:"master"`
	Profile *manifest.NodeProfile `json:"profile,omitempty"`
}

// defaultProfile is the profile a node without --role joins with: a
// master's is the first master's; a worker's the first profile whose
// serviceRole is node, else the first, else "node" (the manifest has none).
func defaultProfile(profiles []manifest.NodeProfile, nodes []corev1.Node, master bool) string {
	if master {
		return defaultRole(nodes)
	}
	for _, p := range profiles {
		if p.ServiceRole == "node" {
			return p.Name
		}
	}
	if len(profiles) > 0 {
		return profiles[0].Name
	}
	return "node"
}

// resolveRole decides a joining node's profile and whether it becomes a
// master: its profile's serviceRole when set, else what it asked for, else
// a master while the cluster has fewer than MaxMasters.
func (s *Service) resolveRole(ctx context.Context, req JoinRequest, nodes []corev1.Node) (ProfileResponse, error) {
	raw, err := cluster.Profiles(ctx, s.cfg.Clients)
	if err != nil {
		return ProfileResponse{}, err
	}
	var profiles []manifest.NodeProfile
	if err := yaml.Unmarshal(raw, &profiles); err != nil {
		return ProfileResponse{}, fmt.Errorf("the cluster's node profiles: %w", err)
	}
	masters := 0
	for _, n := range nodes {
		if _, ok := n.Labels[labelControlPlane]; ok {
			masters++
		}
	}
	master := masters < MaxMasters
	if req.Master != nil {
		master = *req.Master
	}
	role := req.Role
	if role == "" {
		role = defaultProfile(profiles, nodes, master)
	}
	var names []string
	var profile *manifest.NodeProfile
	for i, p := range profiles {
		names = append(names, p.Name)
		if p.Name == role {
			profile = &profiles[i]
		}
	}
	switch {
	case profile == nil && len(profiles) > 0:
		return ProfileResponse{}, refuse("--role=%s: the application has no such node profile (it has %s)", role, strings.Join(names, ", "))
	case profile == nil && role != "node":
		return ProfileResponse{}, refuse("--role=%s: the application has no node profiles; its nodes are \"node\"", role)
	case profile != nil && profile.ServiceRole != "":
		want := profile.ServiceRole == "master"
		if req.Master != nil && *req.Master != want {
			return ProfileResponse{}, refuse("--role=%s is a %s profile (serviceRole), which --master=%v contradicts", role, profile.ServiceRole, *req.Master)
		}
		master = want
	}
	return ProfileResponse{Role: role, Master: master, Profile: profile}, nil
}

// handleProfile tells a joining node its role and profile before it asks
// to join, so that it runs the profile's preflight checks first.
func (s *Service) handleProfile(w http.ResponseWriter, r *http.Request) {
	var req JoinRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	nodes, err := s.cfg.Clients.Kube.Nodes().List(r.Context(), metav1.ListOptions{})
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	resp, err := s.resolveRole(r.Context(), req, nodes.Items)
	s.answer(w, resp, err)
}

package cluster

import (
	"context"
	"encoding/json"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/opengravity/gravity/internal/install/hook"
)

// Node hooks of the application (preNodeAdd, postNodeAdd, preNodeRemove,
// postNodeRemove), which run as Gravity ran them: from the cluster, for
// each join and removal.
const (
	HookPreNodeAdd     = "preNodeAdd"
	HookPostNodeAdd    = "postNodeAdd"
	HookPreNodeRemove  = "preNodeRemove"
	HookPostNodeRemove = "postNodeRemove"
)

// NodeHookNames are the hooks NodeHooks keeps.
var NodeHookNames = []string{HookPreNodeAdd, HookPostNodeAdd, HookPreNodeRemove, HookPostNodeRemove}

// NodeHooks is the running version's node hooks, kept in the cluster when
// it is installed or upgraded, so that the cluster service of any master
// runs them (the app package is on the master that installed it only; its
// resources image is in every master's registry).
type NodeHooks struct {
	App  hook.App                `json:"app"`
	Jobs map[string]*batchv1.Job `json:"jobs,omitempty"`
}

const nodeHooksName = "gravity-node-hooks"

// SaveNodeHooks records h.
func SaveNodeHooks(ctx context.Context, c Clients, h NodeHooks) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return putRecord(ctx, c, nodeHooksName, "hooks.json", data)
}

// LoadNodeHooks reads what SaveNodeHooks recorded; no Jobs when nothing
// was (a cluster installed before the record existed).
func LoadNodeHooks(ctx context.Context, c Clients) (NodeHooks, error) {
	var h NodeHooks
	data, err := record(ctx, c, nodeHooksName, "hooks.json")
	if err != nil || data == nil {
		return h, err
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return h, fmt.Errorf("reading the node hooks: %w", err)
	}
	return h, nil
}

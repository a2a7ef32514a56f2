// Package podnet is the node agent's half of the pod network. Every node
// has a bridge holding its own pod subnet (config.CNIConfig); the agent
// publishes that subnet on the node's API object and programs one route per
// other node, "<its pod subnet> via <its address>", so that pods reach pods
// on any node with their own addresses: no overlay and no NAT. This needs
// the nodes to share an L2 segment (or a router that knows the routes), as
// flannel's host-gw backend does.
//
// The core is pure: Desired turns the nodes seen in the API into routes and
// Diff compares them with the routes the agent owns in the kernel. Agent
// does the I/O: a node informer, a route table (netlink) and a health
// endpoint for the supervisor.
package podnet

// Package node is the composition root of the node runtime: the one place
// that lists a node's components in start order and wires each to its
// binary, flags, readiness probe and ports (internal/runtime/config makes
// the flags and files, internal/runtime/supervisor runs the processes).
//
// A node's life is: Bootstrap (first master) or IssueNode (any other node)
// writes its certificates and kubeconfigs; Prepare writes the generated
// configuration and makes the directories and cgroups the components
// expect; Run supervises Processes until asked to stop, publishing a
// status file that ReadStatus reads from another process.
package node

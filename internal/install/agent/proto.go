// Package agent is the protocol between the installer and the install agent
// that runs on every node: the agent dials the installer over gRPC with mutual
// TLS and the join token, reports its node's facts, and then runs the commands
// the installer sends, streaming their output back. `gravity install` runs
// node-local plan phases this way; `gravity join` reuses it.
//
// There is no protoc in the build, so the service is described by hand and
// the messages are plain Go structs carried by a JSON codec.
package agent

import (
	"encoding/json"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
)

const (
	// codecName is the gRPC content subtype; both sides must ask for it
	// because the default codec only handles protobuf messages.
	codecName = "json"
	// connectMethod is the single bidirectional stream an agent holds open.
	connectMethod = "/gravity.install.v1.Installer/Connect"
	// tokenHeader carries the join token in the stream's metadata.
	tokenHeader = "gravity-token"
	// maxMessage bounds a message; Command.Stdin travels in one message, so
	// this is also the bound on stdin (JSON grows bytes by a third).
	maxMessage = 64 << 20
)

func init() {
	encoding.RegisterCodec(jsonCodec{})
}

type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("json codec: marshal %T: %w", v, err)
	}
	return b, nil
}

func (jsonCodec) Unmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("json codec: unmarshal %T: %w", v, err)
	}
	return nil
}

func (jsonCodec) Name() string { return codecName }

// serviceDesc is what protoc would have generated for
//
//	service Installer { rpc Connect(stream AgentMsg) returns (stream ServerMsg); }
var serviceDesc = grpc.ServiceDesc{
	ServiceName: "gravity.install.v1.Installer",
	// Any type implements any; the handler asserts *Server itself.
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "Connect",
		Handler:       func(srv any, stream grpc.ServerStream) error { return srv.(*Server).connect(stream) },
		ServerStreams: true,
		ClientStreams: true,
	}},
	Metadata: "gravity/install/v1/installer",
}

// NodeInfo is what an agent reports about its node when it connects.
type NodeInfo struct {
	Hostname string `json:"hostname"`
	// AdvertiseIP is the node's identity: an agent reconnecting with the
	// same address replaces the previous connection.
	AdvertiseIP string `json:"advertiseIP"`
	Role        string `json:"role"`
	// OS is PRETTY_NAME from /etc/os-release.
	OS          string `json:"os"`
	CPUs        int    `json:"cpus"`
	MemoryBytes uint64 `json:"memoryBytes"`
	// Version is the gravity release the agent runs.
	Version string `json:"version"`
}

// SelfExecutable as a Command's first argument stands for the agent's own
// binary, wherever it was started from on its node: the installer cannot
// know that path on another machine.
const SelfExecutable = "@self"

// Command is a process for an agent to run.
type Command struct {
	Args []string
	// Env is added to the agent's own environment; later entries win.
	Env []string
	// Stdin is the whole standard input; nil means /dev/null.
	Stdin []byte
}

// Output streams.
const (
	streamStdout = 1
	streamStderr = 2
)

// agentMsg is what an agent sends; exactly one field is set.
type agentMsg struct {
	Hello  *NodeInfo  `json:"hello,omitempty"`
	Output *outputMsg `json:"output,omitempty"`
	Exit   *exitMsg   `json:"exit,omitempty"`
}

type outputMsg struct {
	ID     uint64 `json:"id"`
	Stream int    `json:"stream"`
	Data   []byte `json:"data"`
}

type exitMsg struct {
	ID   uint64 `json:"id"`
	Code int    `json:"code"`
	// Error is set when the process did not exit on its own: it could not
	// start, was killed by a signal, or was cancelled.
	Error string `json:"error,omitempty"`
}

// serverMsg is what the installer sends; exactly one field is set.
type serverMsg struct {
	// Welcome tells the agent its hello was accepted, so it can tell a
	// refused connection from a working one.
	Welcome bool       `json:"welcome,omitempty"`
	Run     *runMsg    `json:"run,omitempty"`
	Cancel  *cancelMsg `json:"cancel,omitempty"`
}

type runMsg struct {
	ID    uint64   `json:"id"`
	Args  []string `json:"args"`
	Env   []string `json:"env,omitempty"`
	Stdin []byte   `json:"stdin,omitempty"`
}

type cancelMsg struct {
	ID uint64 `json:"id"`
}

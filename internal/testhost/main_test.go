//go:build linux

package testhost

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// helperEnv makes the test binary a helper: a TCP echo peer run inside a
// host, or a run that builds hosts and waits to be killed.
const helperEnv = "GRAVITY_TESTHOST_HELPER"

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		if err := helper(strings.Fields(h)); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func helper(args []string) error {
	switch {
	case len(args) == 2 && args[0] == "listen":
		return listenOnce(args[1])
	case len(args) == 2 && args[0] == "dial":
		return dialOnce(args[1])
	case len(args) == 3 && args[0] == "up":
		return upAndHang(args[1], args[2])
	}
	return fmt.Errorf("unknown helper %q", args)
}

// listenOnce echoes one line back to one client.
func listenOnce(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println("listening")
	c, err := l.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	_, err = io.WriteString(c, "echo "+line)
	return err
}

func dialOnce(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	host, _ := os.Hostname()
	if _, err := fmt.Fprintf(c, "from %s\n", host); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	fmt.Print(line)
	return err
}

// upAndHang is a test run that gets killed: it leaves hosts behind.
func upAndHang(prefix, subnet string) error {
	ctx := context.Background()
	n, err := NewNetwork(ctx, Options{Prefix: prefix, Subnet: subnet, DefaultRoute: true})
	if err != nil {
		return err
	}
	for _, name := range []string{"h1", "h2"} {
		if _, err := n.AddHost(ctx, name); err != nil {
			return err
		}
	}
	fmt.Println("ready")
	select {}
}

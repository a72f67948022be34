// `ttpbench watch-bind --port P --file F`: writes to F the time (epoch ms) at which a socket starts listening on TCP
// port P, polled every quarter millisecond through the kernel's socket diagnostics (listening sockets only, so the
// cost does not grow with the thousands of TIME_WAIT sockets a bench leaves behind, as /proc/net/tcp's would).
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

const (
	netlinkInetDiag  = 4
	sockDiagByFamily = 20
	tcpListenState   = 10
	watchGiveUp      = 20 * time.Second
	watchInterval    = 250 * time.Microsecond
)

func runWatchBind(args []string) error {
	set := flag.NewFlagSet("watch-bind", flag.ContinueOnError)
	port := set.Int("port", 0, "TCP port")
	file := set.String("file", "", "where to write the bind time")
	if err := set.Parse(args); err != nil || *port <= 0 || *file == "" {
		return fmt.Errorf("usage: watch-bind --port P --file F")
	}
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, netlinkInetDiag)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	deadline := time.Now().Add(watchGiveUp)
	for time.Now().Before(deadline) {
		listening, err := isListening(fd, *port)
		if err != nil {
			return err
		}
		if listening {
			at := float64(time.Now().UnixMicro()) / 1e3
			return os.WriteFile(*file, []byte(strconv.FormatFloat(at, 'f', 3, 64)+"\n"), 0o644)
		}
		time.Sleep(watchInterval)
	}
	return fmt.Errorf("nothing listened on port %d within %s", *port, watchGiveUp)
}

// isListening asks for every listening IPv4 and IPv6 TCP socket and looks for the port among them.
func isListening(fd int, port int) (bool, error) {
	for _, family := range []byte{syscall.AF_INET, syscall.AF_INET6} {
		request := make([]byte, 16+56)
		binary.LittleEndian.PutUint32(request[0:], uint32(len(request)))
		binary.LittleEndian.PutUint16(request[4:], sockDiagByFamily)
		binary.LittleEndian.PutUint16(request[6:], syscall.NLM_F_REQUEST|syscall.NLM_F_DUMP)
		request[16], request[17] = family, syscall.IPPROTO_TCP
		binary.LittleEndian.PutUint32(request[20:], 1<<tcpListenState)
		if err := syscall.Sendto(fd, request, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
			return false, err
		}
		found, err := readListeners(fd, port)
		if found || err != nil {
			return found, err
		}
	}
	return false, nil
}

// readListeners reads one dump to its end; each message is an inet_diag_msg whose source port (big-endian) is at
// offset 4.
func readListeners(fd int, port int) (bool, error) {
	buffer := make([]byte, 64<<10)
	found := false
	for {
		n, _, err := syscall.Recvfrom(fd, buffer, 0)
		if err != nil {
			return false, err
		}
		messages, err := syscall.ParseNetlinkMessage(buffer[:n])
		if err != nil {
			return false, err
		}
		for _, message := range messages {
			switch message.Header.Type {
			case syscall.NLMSG_DONE:
				return found, nil
			case syscall.NLMSG_ERROR:
				return false, fmt.Errorf("socket diagnostics refused the request")
			}
			if len(message.Data) >= 6 && int(binary.BigEndian.Uint16(message.Data[4:6])) == port {
				found = true
			}
		}
	}
}

// `ttpbench connect-when-bound --port P --hello HEX`: for the cold start through the real cloudflared without a proxy,
// the client a perfect proxy would be: it tries to connect every fifth of a millisecond until the port takes the
// connection, sends the hello and prints the epoch time (ms) of the first byte back, to compare with the bind time.
package main

import (
	"fmt"
	"syscall"
	"time"
)

const (
	readyRetry  = 200 * time.Microsecond
	readyGiveUp = 15 * time.Second
)

func runConnectWhenBound(args []string) error {
	set, parsed := targetFlags("connect-when-bound")
	if err := set.Parse(args); err != nil {
		return err
	}
	t, err := parsed()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(readyGiveUp)
	for {
		fd, err := dialRaw(t.port, false)
		if err == syscall.ECONNREFUSED && time.Now().Before(deadline) {
			time.Sleep(readyRetry)
			continue
		}
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		buffer := make([]byte, len(t.hello))
		if err := writeAll(fd, t.hello); err != nil {
			return err
		}
		var n int
		if err := retry(func() (err error) { n, err = syscall.Read(fd, buffer); return }); err != nil || n == 0 {
			return fmt.Errorf("closed before the first byte (%v)", err)
		}
		at := float64(time.Now().UnixMicro()) / 1e3
		if err := readAtLeast(fd, buffer[n:], len(t.hello)-n); err != nil {
			return err
		}
		emit(map[string]interface{}{"firstByteAt": at})
		return nil
	}
}

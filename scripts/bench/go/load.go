// The load generator's measuring phases on one connection at a time, one subcommand each, every one with --port P
// --hello HEX: bulk into the sink, sequential connect + hello + first byte, round trips (connections per second are
// in cps.go, idle connections in idle.go). Blocking sockets without Go's poller: a wait is one system call, and the
// time taken is the kernel's wake-up, not a scheduler's. A client closes once it has read everything it expects, so
// its FIN goes out as a proxy's would, and no reset.
package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// firstByte connects a blocking socket, sends the hello and times the first byte back; then it reads the rest of the
// hello's echo and closes. `timeout` > 0 bounds each wait (a probe that gets no answer fails).
func firstByte(t target, timeout time.Duration) (time.Duration, error) {
	buffer := make([]byte, len(t.hello)+1)
	started := time.Now()
	fd, err := dialRaw(t.port, false)
	if err != nil {
		return 0, err
	}
	defer syscall.Close(fd)
	if timeout > 0 {
		limit := syscall.NsecToTimeval(timeout.Nanoseconds())
		_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &limit)
	}
	if err := writeAll(fd, t.hello); err != nil {
		return 0, err
	}
	var n int
	if err := retry(func() (err error) { n, err = syscall.Read(fd, buffer); return }); err != nil || n == 0 {
		return 0, fmt.Errorf("closed before the first byte (%v)", err)
	}
	elapsed := time.Since(started)
	if n < len(t.hello) {
		if err := readAtLeast(fd, buffer[n:], len(t.hello)-n); err != nil {
			return 0, err
		}
	}
	return elapsed, nil
}

func sortedMillis(samples []time.Duration) []float64 {
	out := make([]float64, len(samples))
	for i, d := range samples {
		out[i] = millis(d)
	}
	sort.Float64s(out)
	return out
}

// runBulk sends the hello and --bytes to a sink that answers its count at FIN; MB/s of payload, the count checked.
func runBulk(args []string) error {
	set, parsed := targetFlags("bulk")
	total := set.Int("bytes", 0, "payload bytes")
	if err := set.Parse(args); err != nil {
		return err
	}
	t, err := parsed()
	if err != nil {
		return err
	}
	block := pattern(256 << 10)
	started := time.Now()
	fd, err := dialRaw(t.port, false)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	if err := writeAll(fd, t.hello); err != nil {
		return err
	}
	for sent := 0; sent < *total; sent += len(block) {
		if *total-sent < len(block) {
			block = block[:*total-sent]
		}
		if err := writeAll(fd, block); err != nil {
			return err
		}
	}
	if err := syscall.Shutdown(fd, syscall.SHUT_WR); err != nil {
		return err
	}
	reply, err := readToEnd(fd)
	if err != nil {
		return err
	}
	seconds := time.Since(started).Seconds()
	if counted, _ := strconv.Atoi(strings.TrimSpace(string(reply))); counted != *total+len(t.hello) {
		return fmt.Errorf("sink counted %q, sent %d", strings.TrimSpace(string(reply)), *total+len(t.hello))
	}
	emit(map[string]interface{}{"mbps": float64(*total) / 1e6 / seconds})
	return nil
}

// readToEnd reads a blocking socket until the far end's FIN.
func readToEnd(fd int) ([]byte, error) {
	var out []byte
	buffer := make([]byte, 4096)
	for {
		var n int
		if err := retry(func() (err error) { n, err = syscall.Read(fd, buffer); return }); err != nil {
			return out, err
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buffer[:n]...)
	}
}

// runConnect times --count sequential connect + hello + first byte; sorted milliseconds.
func runConnect(args []string) error {
	set, parsed := targetFlags("connect")
	count := set.Int("count", 1, "connections")
	if err := set.Parse(args); err != nil {
		return err
	}
	t, err := parsed()
	if err != nil {
		return err
	}
	samples := make([]time.Duration, 0, *count)
	for i := 0; i < *count; i++ {
		elapsed, err := firstByte(t, 0)
		if err != nil {
			return err
		}
		samples = append(samples, elapsed)
	}
	emit(map[string]interface{}{"samples": sortedMillis(samples)})
	return nil
}

// runRtt times --count round trips of --size bytes on one connection, after the hello's echo; sorted milliseconds.
func runRtt(args []string) error {
	set, parsed := targetFlags("rtt")
	count := set.Int("count", 1000, "round trips")
	size := set.Int("size", 64, "bytes per message")
	if err := set.Parse(args); err != nil {
		return err
	}
	t, err := parsed()
	if err != nil {
		return err
	}
	fd, err := dialRaw(t.port, false)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	noDelay(fd)
	buffer := make([]byte, len(t.hello)+*size)
	if err := writeAll(fd, t.hello); err != nil {
		return err
	}
	if err := readAtLeast(fd, buffer, len(t.hello)); err != nil {
		return err
	}
	message := []byte(strings.Repeat("a", *size))
	samples := make([]time.Duration, 0, *count)
	for i := 0; i < *count; i++ {
		started := time.Now()
		if err := writeAll(fd, message); err != nil {
			return err
		}
		if err := readAtLeast(fd, buffer, *size); err != nil {
			return err
		}
		samples = append(samples, time.Since(started))
	}
	emit(map[string]interface{}{"samples": sortedMillis(samples)})
	return nil
}

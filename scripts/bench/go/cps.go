// `ttpbench cps --port P --hello HEX --clients N --ms T`: connections per second, N clients each in a loop of
// connect, hello, the hello's echo back, close, for T ms. One epoll loop on one thread drives every client with
// non-blocking sockets: socket, connect, write, epoll_ctl, read, close — six system calls a connection.
package main

import (
	"fmt"
	"runtime"
	"syscall"
	"time"
)

type cpsClient struct {
	written int
	echoed  int
}

func runCps(args []string) error {
	set, parsed := targetFlags("cps")
	clients := set.Int("clients", 32, "concurrent clients")
	ms := set.Int("ms", 3000, "duration")
	if err := set.Parse(args); err != nil {
		return err
	}
	t, err := parsed()
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	p, err := newPoller()
	if err != nil {
		return err
	}
	active := map[int]*cpsClient{}
	var done, failed int64
	started := time.Now()
	deadline := started.Add(time.Duration(*ms) * time.Millisecond)
	buffer := make([]byte, 64<<10)
	// start opens one client's next connection, writing the hello at once when the handshake is already through (as
	// it is on loopback) and otherwise once the socket is writable.
	start := func() {
		fd, err := dialRaw(t.port, true)
		if err != nil {
			failed++
			return
		}
		c := &cpsClient{}
		if n, err := syscall.Write(fd, t.hello); err == nil {
			c.written = n
		}
		events := uint32(epollIn | epollET)
		if c.written < len(t.hello) {
			events |= epollOut
		}
		if p.add(fd, events) != nil {
			syscall.Close(fd)
			failed++
			return
		}
		active[fd] = c
	}
	end := func(fd int, ok bool) {
		syscall.Close(fd)
		delete(active, fd)
		if ok {
			done++
		} else {
			failed++
		}
	}
	for i := 0; i < *clients; i++ {
		start()
	}
	// Connections still open this long after the deadline are given up (and counted as failed).
	giveUp := deadline.Add(10 * time.Second)
	for (len(active) > 0 && time.Now().Before(giveUp)) || (time.Now().Before(deadline) && failed < 1000) {
		for len(active) < *clients && time.Now().Before(deadline) && failed < 1000 {
			start()
		}
		events, err := p.wait(100)
		if err != nil {
			return err
		}
		for _, event := range events {
			fd := int(event.Fd)
			c := active[fd]
			if c == nil {
				continue
			}
			if c.written < len(t.hello) {
				n, err := syscall.Write(fd, t.hello[c.written:])
				if err != nil && err != syscall.EAGAIN {
					end(fd, false)
					continue
				}
				if n > 0 {
					c.written += n
				}
			}
			closed := false
			for c.echoed < len(t.hello) && !closed {
				n, err := syscall.Read(fd, buffer)
				if err == syscall.EAGAIN {
					break
				}
				if closed = err != nil || n == 0; !closed {
					c.echoed += n
				}
			}
			if c.echoed >= len(t.hello) {
				end(fd, true)
			} else if closed || event.Events&(syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				end(fd, false)
			}
		}
	}
	failed += int64(len(active))
	if done == 0 {
		return fmt.Errorf("no connection got its hello back (%d failed)", failed)
	}
	elapsed := time.Since(started).Seconds()
	emit(map[string]interface{}{"cps": float64(done) / elapsed, "count": done, "failed": failed})
	return nil
}

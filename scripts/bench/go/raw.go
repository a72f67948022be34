// Sockets without Go's network poller, for the peers' hot paths: every connection and every byte of the load
// generator and the backend costs the machine CPU that the proxy under test then lacks, so they make as few system
// calls as they can and copy payload as little: bytes received go through a pipe to /dev/null (splice), an echo moves
// bytes socket to pipe to socket, and only the bytes sent are copied in. Event loops use epoll directly.
package main

import (
	"os"
	"syscall"
)

const (
	epollIn        = syscall.EPOLLIN
	epollOut       = syscall.EPOLLOUT
	epollET        = 1 << 31
	spliceMove     = 1 // SPLICE_F_MOVE
	spliceNonblock = 2 // SPLICE_F_NONBLOCK
	fSetPipeSize   = 1031
	// pipeBytes is what one splice moves at most: large, so a fast stream takes few calls.
	pipeBytes = 1 << 20
)

// setPipeSize makes a pipe hold pipeBytes (the default is 64 KiB); the pages are only taken as bytes come.
func setPipeSize(fd int) {
	_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), fSetPipeSize, pipeBytes)
}

// retry repeats a system call that a signal interrupted.
func retry(call func() error) error {
	for {
		if err := call(); err != syscall.EINTR {
			return err
		}
	}
}

// dialRaw connects a new socket to 127.0.0.1:port; a non-blocking one may still be connecting when it returns.
func dialRaw(port int, nonblocking bool) (int, error) {
	flags := syscall.SOCK_STREAM | syscall.SOCK_CLOEXEC
	if nonblocking {
		flags |= syscall.SOCK_NONBLOCK
	}
	fd, err := syscall.Socket(syscall.AF_INET, flags, 0)
	if err != nil {
		return -1, err
	}
	err = retry(func() error {
		return syscall.Connect(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
	})
	if err != nil && err != syscall.EINPROGRESS && err != syscall.EALREADY {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

func noDelay(fd int) { _ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1) }

// writeAll writes every byte on a blocking socket.
func writeAll(fd int, bytes []byte) error {
	for len(bytes) > 0 {
		var n int
		err := retry(func() (err error) { n, err = syscall.Write(fd, bytes); return })
		if err != nil {
			return err
		}
		bytes = bytes[n:]
	}
	return nil
}

// readAtLeast reads from a blocking socket until `want` bytes came; ECONNRESET when the far end closes first.
func readAtLeast(fd int, buffer []byte, want int) error {
	for got := 0; got < want; {
		var n int
		err := retry(func() (err error) { n, err = syscall.Read(fd, buffer[got:]); return })
		if err != nil {
			return err
		}
		if n == 0 {
			return syscall.ECONNRESET
		}
		got += n
	}
	return nil
}

// pattern is the payload the load generator sends: written from this buffer (on loopback, sendfile() from a file's
// pages costs more than the copy it saves).
func pattern(size int) []byte {
	bytes := make([]byte, size)
	for i := range bytes {
		bytes[i] = byte(i * 31)
	}
	return bytes
}

// drain takes bytes off sockets without copying them: socket → pipe → /dev/null.
type drain struct {
	pipe [2]int
	null int
}

func newDrain() (*drain, error) {
	var d drain
	if err := syscall.Pipe2(d.pipe[:], syscall.O_CLOEXEC); err != nil {
		return nil, err
	}
	setPipeSize(d.pipe[1])
	null, err := syscall.Open(os.DevNull, syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
	d.null = null
	return &d, err
}

// take moves up to `max` bytes from the socket: how many (0 at the end of the stream), or EAGAIN.
func (d *drain) take(fd int, max int) (int, error) {
	var n int64
	err := retry(func() (err error) {
		n, err = syscall.Splice(fd, nil, d.pipe[1], nil, max, spliceMove|spliceNonblock)
		return
	})
	if err != nil || n == 0 {
		return 0, err
	}
	for left := n; left > 0; {
		var m int64
		if err := retry(func() (err error) {
			m, err = syscall.Splice(d.pipe[0], nil, d.null, nil, int(left), spliceMove)
			return
		}); err != nil {
			return 0, err
		}
		left -= m
	}
	return int(n), nil
}

// poller is one epoll instance; events carry the file descriptor.
type poller struct {
	fd     int
	events []syscall.EpollEvent
}

func newPoller() (*poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	return &poller{fd: fd, events: make([]syscall.EpollEvent, 256)}, err
}

func (p *poller) add(fd int, events uint32) error {
	return syscall.EpollCtl(p.fd, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: events, Fd: int32(fd)})
}

func (p *poller) modify(fd int, events uint32) error {
	return syscall.EpollCtl(p.fd, syscall.EPOLL_CTL_MOD, fd, &syscall.EpollEvent{Events: events, Fd: int32(fd)})
}

// wait returns the ready events (none when interrupted or after timeoutMs; -1 waits for ever).
func (p *poller) wait(timeoutMs int) ([]syscall.EpollEvent, error) {
	n, err := syscall.EpollWait(p.fd, p.events, timeoutMs)
	if err == syscall.EINTR {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return p.events[:n], nil
}

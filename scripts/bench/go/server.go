// The backend's echo and sink servers: one epoll loop on a thread of its own for every listener and connection, bytes
// moved by splice (an echo goes socket → pipe → socket, a sink's bytes socket → pipe → /dev/null), so the backend
// costs a few system calls per connection and no copy per byte. An echo whose client does not read keeps its bytes
// in its own pipe and stops reading until they are written (backpressure).
package main

import (
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"syscall"
)

type serverConn struct {
	sink    bool
	count   int64
	pipe    [2]int // an echo's bytes not written yet, when pending > 0
	pending int
	waiting bool // for the socket to be writable, not readable
}

type spliceServer struct {
	poller    *poller
	mu        sync.Mutex
	listeners map[int]bool // fd → sink
	conns     map[int]*serverConn
	pipes     [][2]int // empty pipes to use
	drain     *drain
}

func newSpliceServer() (*spliceServer, error) {
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	d, err := newDrain()
	if err != nil {
		return nil, err
	}
	s := &spliceServer{poller: p, listeners: map[int]bool{}, conns: map[int]*serverConn{}, drain: d}
	go s.loop()
	return s, nil
}

// listen binds 127.0.0.1:port (0 = any) and serves it; the port and a function that stops listening.
func (s *spliceServer) listen(port int, sink bool) (int, func(), error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, nil, err
	}
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	noDelay(fd) // accepted sockets inherit it
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return 0, nil, fmt.Errorf("listen tcp 127.0.0.1:%d: bind: %v", port, err)
	}
	if err := syscall.Listen(fd, 4096); err != nil {
		syscall.Close(fd)
		return 0, nil, err
	}
	name, _ := syscall.Getsockname(fd)
	s.mu.Lock()
	s.listeners[fd] = sink
	s.mu.Unlock()
	if err := s.poller.add(fd, epollIn); err != nil {
		return 0, nil, err
	}
	stop := func() {
		s.mu.Lock()
		delete(s.listeners, fd)
		syscall.Close(fd)
		s.mu.Unlock()
	}
	return name.(*syscall.SockaddrInet4).Port, stop, nil
}

func (s *spliceServer) loop() {
	runtime.LockOSThread()
	for {
		events, err := s.poller.wait(-1)
		if err != nil {
			panic(err)
		}
		for _, event := range events {
			fd := int(event.Fd)
			if conn, ok := s.conns[fd]; ok {
				s.serve(fd, conn, event.Events)
				continue
			}
			s.mu.Lock()
			sink, ok := s.listeners[fd]
			s.mu.Unlock()
			if ok {
				s.accept(fd, sink)
			}
		}
	}
}

func (s *spliceServer) accept(listener int, sink bool) {
	for {
		fd, _, err := syscall.Accept4(listener, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		s.conns[fd] = &serverConn{sink: sink}
		if s.poller.add(fd, epollIn) != nil {
			s.close(fd)
		}
	}
}

func (s *spliceServer) close(fd int) {
	if conn := s.conns[fd]; conn != nil && conn.pending > 0 {
		syscall.Close(conn.pipe[0])
		syscall.Close(conn.pipe[1])
	}
	delete(s.conns, fd)
	syscall.Close(fd)
}

func (s *spliceServer) serve(fd int, conn *serverConn, events uint32) {
	switch {
	case conn.pending > 0:
		s.flush(fd, conn)
	case conn.sink:
		n, err := s.drain.take(fd, pipeBytes)
		conn.count += int64(n)
		if err == nil && n == 0 {
			_, _ = syscall.Write(fd, []byte(strconv.FormatInt(conn.count, 10)+"\n"))
		}
		if err != syscall.EAGAIN && (err != nil || n == 0) {
			s.close(fd)
		}
	default:
		s.echo(fd, conn)
	}
}

// echo moves what the socket has into an empty pipe and from it back to the socket; what the socket does not take
// stays in the pipe, which the connection then keeps, and the connection waits to be writable instead of readable.
func (s *spliceServer) echo(fd int, conn *serverConn) {
	if len(s.pipes) == 0 {
		var pipe [2]int
		if syscall.Pipe2(pipe[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK) != nil {
			s.close(fd)
			return
		}
		setPipeSize(pipe[1])
		s.pipes = append(s.pipes, pipe)
	}
	pipe := s.pipes[len(s.pipes)-1]
	n, err := syscall.Splice(fd, nil, pipe[1], nil, pipeBytes, spliceMove|spliceNonblock)
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return
	}
	if err != nil || n == 0 {
		s.close(fd) // the client's FIN (or an error), nothing pending: our FIN back
		return
	}
	conn.pipe, conn.pending = pipe, int(n)
	s.pipes = s.pipes[:len(s.pipes)-1]
	s.flush(fd, conn)
}

// flush writes the connection's pending bytes; once they are all written the pipe goes back for reuse.
func (s *spliceServer) flush(fd int, conn *serverConn) {
	for conn.pending > 0 {
		n, err := syscall.Splice(conn.pipe[0], nil, fd, nil, conn.pending, spliceMove|spliceNonblock)
		if err == syscall.EAGAIN {
			if !conn.waiting && s.poller.modify(fd, epollOut) != nil {
				s.close(fd)
			}
			conn.waiting = true
			return
		}
		if err != nil && err != syscall.EINTR {
			s.close(fd)
			return
		}
		conn.pending -= int(n)
	}
	s.pipes = append(s.pipes, conn.pipe)
	if conn.waiting && s.poller.modify(fd, epollIn) != nil {
		s.close(fd)
	}
	conn.waiting = false
}

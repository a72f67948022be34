// The streams of the loaded scenario, driven by one epoll loop on one thread: each writes 256 KiB chunks while at
// most `window` bytes of its chunks are unechoed (0: only TCP's backpressure limits it), and reads its echo through a
// pipe to /dev/null. A stream that closes or fails while the load is on counts as lost.
package main

import (
	"runtime"
	"sync/atomic"
	"syscall"
)

type stream struct {
	left     int // bytes of the current chunk not written yet
	inFlight int // bytes of started chunks not echoed yet
}

type streamLoad struct {
	poller    *poller
	streams   map[int]*stream
	window    int
	chunk     []byte
	drain     *drain
	measuring atomic.Bool
	stopping  atomic.Bool
	measured  atomic.Int64 // echoed bytes while measuring
	sinceGo   atomic.Int64 // echoed bytes since the load started
	lost      atomic.Int64
}

func newStreamLoad(fds []int, window int) (*streamLoad, error) {
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	d, err := newDrain()
	if err != nil {
		return nil, err
	}
	load := &streamLoad{poller: p, streams: map[int]*stream{}, window: window, chunk: pattern(chunkSize), drain: d}
	for _, fd := range fds {
		if err := p.add(fd, epollIn|epollOut|epollET); err != nil {
			return nil, err
		}
		load.streams[fd] = &stream{}
	}
	return load, nil
}

func (l *streamLoad) run() {
	runtime.LockOSThread()
	for fd, s := range l.streams {
		l.pump(fd, s)
	}
	for len(l.streams) > 0 {
		events, err := l.poller.wait(-1)
		if err != nil {
			return
		}
		for _, event := range events {
			fd := int(event.Fd)
			if s := l.streams[fd]; s != nil && l.read(fd, s) {
				l.pump(fd, s)
			}
		}
	}
}

// read takes every echoed byte there is; false when the stream is gone.
func (l *streamLoad) read(fd int, s *stream) bool {
	for {
		n, err := l.drain.take(fd, pipeBytes)
		if err == syscall.EAGAIN {
			return true
		}
		if err != nil || n == 0 {
			l.lose(fd)
			return false
		}
		s.inFlight -= n
		l.sinceGo.Add(int64(n))
		if l.measuring.Load() {
			l.measured.Add(int64(n))
		}
	}
}

// pump writes as long as the socket takes bytes and the window allows a new chunk.
func (l *streamLoad) pump(fd int, s *stream) {
	for {
		if s.left == 0 {
			if l.window > 0 && s.inFlight > 0 && s.inFlight+chunkSize > l.window {
				return
			}
			s.left = chunkSize
			s.inFlight += chunkSize
		}
		n, err := syscall.Write(fd, l.chunk[chunkSize-s.left:])
		if err == syscall.EAGAIN {
			return
		}
		if err != nil {
			l.lose(fd)
			return
		}
		s.left -= n
	}
}

func (l *streamLoad) lose(fd int) {
	syscall.Close(fd)
	delete(l.streams, fd)
	if !l.stopping.Load() {
		l.lost.Add(1)
	}
}

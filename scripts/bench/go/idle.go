// The phases where the load generator's own cost does not matter, with Go's network code: holding idle connections
// (for the proxies' memory per connection) and the touch that starts a tunnel.
package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"sync"
)

// dialer sets no keep-alive: three setsockopt calls per connection that a short-lived client does not need.
var dialer = net.Dialer{KeepAlive: -1}

// dial is Go's own connect + hello, for the phases where the client's cost does not matter (idle, touch).
func dial(t target) (*net.TCPConn, error) {
	conn, err := dialer.Dial("tcp", t.address)
	if err != nil {
		return nil, err
	}
	tcp := conn.(*net.TCPConn)
	if _, err := tcp.Write(t.hello); err != nil {
		tcp.Close()
		return nil, err
	}
	return tcp, nil
}

// finish sends FIN and closes once the far end has: closing with unread bytes would send a reset instead.
func finish(conn *net.TCPConn) {
	_ = conn.CloseWrite()
	_, _ = io.Copy(io.Discard, conn)
	conn.Close()
}

// runIdle opens --count connections (--batch at a time) that each got their hello echoed, prints {"held": N}, keeps
// them open until stdin closes, then finishes them all.
func runIdle(args []string) error {
	set, parsed := targetFlags("idle")
	count := set.Int("count", 5000, "connections")
	batch := set.Int("batch", 200, "connections opened at once")
	if err := set.Parse(args); err != nil {
		return err
	}
	t, err := parsed()
	if err != nil {
		return err
	}
	conns := make([]*net.TCPConn, *count)
	errs := make(chan error, *count)
	for from := 0; from < *count; from += *batch {
		var wg sync.WaitGroup
		for i := from; i < from+*batch && i < *count; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				conn, err := dial(t)
				if err == nil {
					conns[i] = conn
					_, err = io.ReadFull(conn, make([]byte, len(t.hello)))
				}
				errs <- err
			}(i)
		}
		wg.Wait()
	}
	for range conns {
		if err := <-errs; err != nil {
			return err
		}
	}
	emit(map[string]interface{}{"held": len(conns)})
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	var wg sync.WaitGroup
	for _, conn := range conns {
		wg.Add(1)
		go func(conn *net.TCPConn) { defer wg.Done(); finish(conn) }(conn)
	}
	wg.Wait()
	return nil
}

// runTouch sends the hello and FIN and waits for the far end to close: enough to start a tunnel and see it serve.
func runTouch(args []string) error {
	set, parsed := targetFlags("touch")
	if err := set.Parse(args); err != nil {
		return err
	}
	t, err := parsed()
	if err != nil {
		return err
	}
	conn, err := dial(t)
	if err != nil {
		return err
	}
	finish(conn)
	emit(map[string]interface{}{"touched": true})
	return nil
}

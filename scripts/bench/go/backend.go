// The one backend process of a bench run: echo, sink (server.go) and 4 MB/s sink servers on whatever ports it is told
// to bind, so that every route (direct, HAProxy, the bare forwarder, our proxy, the Go original) ends in the same
// process.
// `ttpbench backend` prints its control port; `GET /listen?port=P&mode=echo|sink|slow[&bound=FILE]` binds 127.0.0.1:P
// (0 = any) and answers {"port","boundAt"} (epoch ms, also written to FILE); `GET /close?port=P` unbinds.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// slowBytesPerSecond is the slow sink's reading rate: a backend far slower than the client, for the memory check.
const slowBytesPerSecond = 4_000_000

func runBackend(args []string) error {
	fast, err := newSpliceServer()
	if err != nil {
		return err
	}
	var mu sync.Mutex
	stops := map[int]func(){}
	mux := http.NewServeMux()
	mux.HandleFunc("/listen", func(w http.ResponseWriter, r *http.Request) {
		query := r.URL.Query()
		port, _ := strconv.Atoi(query.Get("port"))
		var stop func()
		var err error
		switch mode := query.Get("mode"); mode {
		case "echo", "sink":
			port, stop, err = fast.listen(port, mode == "sink")
		case "slow":
			port, stop, err = listenSlow(port)
		default:
			http.Error(w, "bad mode", http.StatusBadRequest)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		boundAt := float64(time.Now().UnixMicro()) / 1e3
		mu.Lock()
		stops[port] = stop
		mu.Unlock()
		// Written before the answer, so before the tunnel's process can take a connection for it: the tunnel's bind
		// time for the cold-start figure.
		if file := query.Get("bound"); file != "" {
			_ = os.WriteFile(file, []byte(strconv.FormatFloat(boundAt, 'f', 3, 64)+"\n"), 0o644)
		}
		_ = json.NewEncoder(w).Encode(map[string]interface{}{"port": port, "boundAt": boundAt})
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		port, _ := strconv.Atoi(r.URL.Query().Get("port"))
		mu.Lock()
		if stop, ok := stops[port]; ok {
			stop()
			delete(stops, port)
		}
		mu.Unlock()
		_, _ = io.WriteString(w, "closed")
	})
	control, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("%d\n", control.Addr().(*net.TCPAddr).Port)
	return http.Serve(control, mux)
}

// listenSlow serves the slow sink, where per-connection cost does not matter, with Go's own network code.
func listenSlow(port int) (int, func(), error) {
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return 0, nil, err
	}
	go acceptLoop(listener, serveSlow)
	return listener.Addr().(*net.TCPAddr).Port, func() { _ = listener.Close() }, nil
}

func acceptLoop(listener net.Listener, serve func(*net.TCPConn)) {
	for {
		conn, err := listener.Accept()
		if err != nil {
			return
		}
		go serve(conn.(*net.TCPConn))
	}
}

// serveSlow is a sink that reads at slowBytesPerSecond: after each read it waits as long as the bytes take at that rate.
func serveSlow(conn *net.TCPConn) {
	defer conn.Close()
	buffer := make([]byte, 64<<10)
	count := 0
	for {
		n, err := conn.Read(buffer)
		count += n
		if err != nil {
			if err == io.EOF {
				_, _ = fmt.Fprintf(conn, "%d\n", count)
			}
			return
		}
		time.Sleep(time.Duration(float64(n) / slowBytesPerSecond * float64(time.Second)))
	}
}

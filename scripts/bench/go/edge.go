// The stand-in for Cloudflare's edge, for cold starts through Cloudflare's real client: a TLS server whose WebSocket
// connections (what `cloudflared access tcp` opens to wss://<hostname> for every local connection) are bridged to a
// backend port, binary frames both ways. `ttpbench edge --listen 127.0.99.1:443 --target P --names '*.bench.test'
// --ca FILE` writes its CA to FILE (for SSL_CERT_FILE) and prints "ready" once it listens. Other requests (the login
// check cloudflared makes without a service token) get an empty 200.
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

func runEdge(args []string) error {
	set := flag.NewFlagSet("edge", flag.ContinueOnError)
	listen := set.String("listen", "", "address to listen on (port 443 of a loopback address)")
	targetPort := set.Int("target", 0, "backend port on 127.0.0.1 that every WebSocket is bridged to")
	names := set.String("names", "", "comma-separated DNS names of the server certificate")
	caFile := set.String("ca", "", "where to write the CA certificate (PEM)")
	if err := set.Parse(args); err != nil || *listen == "" || *targetPort <= 0 || *names == "" || *caFile == "" {
		return fmt.Errorf("usage: edge --listen ADDR --target PORT --names N1,N2 --ca FILE")
	}
	certificate, err := edgeCertificate(strings.Split(*names, ","), *caFile)
	if err != nil {
		return err
	}
	config := &tls.Config{Certificates: []tls.Certificate{certificate}, NextProtos: []string{"http/1.1"}}
	listener, err := tls.Listen("tcp", *listen, config)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	backend := fmt.Sprintf("127.0.0.1:%d", *targetPort)
	for {
		conn, err := listener.Accept()
		if err != nil {
			return err
		}
		go serveEdge(conn, backend)
	}
}

func serveEdge(conn net.Conn, backend string) {
	defer conn.Close()
	reader := bufio.NewReader(conn)
	for {
		request, err := http.ReadRequest(reader)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, request.Body)
		key := request.Header.Get("Sec-WebSocket-Key")
		if !strings.EqualFold(request.Header.Get("Upgrade"), "websocket") || key == "" {
			if _, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"); err != nil {
				return
			}
			continue
		}
		upstream, err := net.Dial("tcp", backend)
		if err != nil {
			_, _ = io.WriteString(conn, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
			return
		}
		defer upstream.Close()
		answer := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + websocketAccept(key) + "\r\n\r\n"
		if _, err := io.WriteString(conn, answer); err != nil {
			return
		}
		bridge(reader, &frameWriter{w: conn}, upstream.(*net.TCPConn))
		return
	}
}

// bridge moves the payload of the client's data frames to the backend and the backend's bytes back as binary
// frames, answering pings; it returns when either side is done.
func bridge(reader *bufio.Reader, frames *frameWriter, upstream *net.TCPConn) {
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		buffer := make([]byte, 32<<10)
		for {
			n, err := upstream.Read(buffer)
			if n > 0 && frames.write(opBinary, buffer[:n]) != nil {
				return
			}
			if err != nil {
				_ = frames.write(opClose, nil)
				return
			}
		}
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		for {
			opcode, payload, err := readFrame(reader)
			if err != nil {
				return
			}
			switch opcode {
			case opContinuation, opText, opBinary:
				if _, err := upstream.Write(payload); err != nil {
					return
				}
			case opPing:
				_ = frames.write(opPong, payload)
			case opClose:
				_ = frames.write(opClose, payload)
				_ = upstream.CloseWrite()
				return
			}
		}
	}()
	<-done
}

// The cloudflared stand-in: `ttpbench access tcp --hostname H --url HOST:P`, the argv our proxy and the Go original
// give cloudflared. Like cloudflared it prints `INF Start Websocket listener host=…` to stderr before P is bound and
// dies on SIGTERM; instead of serving P itself it asks the run's backend (control port in BENCH_BACKEND) to bind P,
// so every route ends in the same backend process. The mode follows the hostname's first label (cft-sink… → sink,
// cft-slow… → slow, anything else echo), and the backend writes the bind time to <BENCH_STATE_DIR>/<H>.bound.
// A hostname starting with cft-real- is handed to Cloudflare's real client (BENCH_REAL_CLOUDFLARED) instead, with a
// watcher that records when it binds P.
package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func flagValue(args []string, name string) string {
	for i, arg := range args {
		if arg == name && i+1 < len(args) {
			return args[i+1]
		}
		if strings.HasPrefix(arg, name+"=") {
			return strings.TrimPrefix(arg, name+"=")
		}
	}
	return ""
}

func cloudflaredLog(level, message string) {
	fmt.Fprintf(os.Stderr, "%s %s %s\n", time.Now().UTC().Format(time.RFC3339), level, message)
}

func runTunnel(args []string) error {
	hostname := flagValue(args, "--hostname")
	address := flagValue(args, "--url")
	port, err := strconv.Atoi(address[strings.LastIndex(address, ":")+1:])
	if len(args) == 0 || args[0] != "tcp" || hostname == "" || err != nil {
		return fmt.Errorf("usage: access tcp --hostname H --url HOST:PORT")
	}
	boundFile := ""
	if dir := os.Getenv("BENCH_STATE_DIR"); dir != "" {
		boundFile = filepath.Join(dir, hostname+".bound")
	}
	if real := os.Getenv("BENCH_REAL_CLOUDFLARED"); real != "" && strings.HasPrefix(hostname, "cft-real-") {
		return execReal(real, port, boundFile)
	}
	mode := "echo"
	if label := strings.TrimPrefix(strings.SplitN(hostname, ".", 2)[0], "cft-"); label == "sink" || label == "slow" {
		mode = label
	}
	control := "http://127.0.0.1:" + os.Getenv("BENCH_BACKEND")
	cloudflaredLog("INF", "Start Websocket listener host="+address)
	query := url.Values{"port": {strconv.Itoa(port)}, "mode": {mode}, "bound": {boundFile}}
	answer, err := http.Get(control + "/listen?" + query.Encode())
	if err != nil {
		return err
	}
	reason, _ := io.ReadAll(answer.Body)
	answer.Body.Close()
	if answer.StatusCode != http.StatusOK {
		if strings.Contains(string(reason), "in use") {
			reason = []byte("address already in use")
		}
		cloudflaredLog("ERR", fmt.Sprintf("listen tcp 127.0.0.1:%d: bind: %s", port, strings.TrimSpace(string(reason))))
		os.Exit(1)
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	if answer, err := http.Get(fmt.Sprintf("%s/close?port=%d", control, port)); err == nil {
		answer.Body.Close()
	}
	return nil
}

// execReal becomes the real cloudflared (same process, so the proxy supervises the real thing) after starting a
// watcher that writes the time the port is bound to boundFile.
func execReal(real string, port int, boundFile string) error {
	if boundFile != "" {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		watcher := exec.Command(self, "watch-bind", "--port", strconv.Itoa(port), "--file", boundFile)
		if err := watcher.Start(); err != nil {
			return err
		}
	}
	return syscall.Exec(real, append([]string{real}, os.Args[1:]...), os.Environ())
}

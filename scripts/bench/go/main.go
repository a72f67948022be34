// The bench's peers in one binary, so that they cost far less CPU per connection than the proxies they measure: the
// load generator (one subcommand per phase), the backend, the cloudflared stand-in and the Cloudflare edge stand-in.
// `ttpbench access tcp --hostname H --url 127.0.0.1:P` is the cloudflared stand-in (argv as cloudflared's); every
// other first argument names a subcommand below. Results are one JSON line on stdout.
package main

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"
)

var commands = map[string]func(args []string) error{
	"backend":            runBackend,
	"edge":               runEdge,
	"watch-bind":         runWatchBind,
	"connect-when-bound": runConnectWhenBound,
	"bulk":               runBulk,
	"connect":            runConnect,
	"rtt":                runRtt,
	"cps":                runCps,
	"idle":               runIdle,
	"touch":              runTouch,
	"streams":            runStreams,
	"probe":              runProbe,
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: ttpbench access tcp --hostname H --url HOST:PORT | ttpbench SUBCOMMAND [flags]")
	}
	var err error
	if os.Args[1] == "access" {
		err = runTunnel(os.Args[2:])
	} else if command, ok := commands[os.Args[1]]; ok {
		err = command(os.Args[2:])
	} else {
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fail(err.Error())
	}
}

func fail(message string) {
	fmt.Fprintf(os.Stderr, "ttpbench: %s\n", message)
	os.Exit(1)
}

// target is what every load subcommand takes: where to connect and the bytes to open each connection with (a TLS
// ClientHello, built by the TypeScript side so that every route and phase sends the same bytes).
type target struct {
	port    int
	address string
	hello   []byte
}

func targetFlags(name string) (*flag.FlagSet, func() (target, error)) {
	set := flag.NewFlagSet(name, flag.ContinueOnError)
	port := set.Int("port", 0, "TCP port on 127.0.0.1")
	helloHex := set.String("hello", "", "the first bytes of every connection, hex")
	return set, func() (target, error) {
		hello, err := hex.DecodeString(*helloHex)
		if err != nil || len(hello) == 0 || *port <= 0 {
			return target{}, fmt.Errorf("%s needs --port and --hello (hex)", name)
		}
		return target{port: *port, address: fmt.Sprintf("127.0.0.1:%d", *port), hello: hello}, nil
	}
}

// cpuMs is this process's user + system CPU time so far, so each result says what the load itself cost.
func cpuMs() float64 {
	var usage syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &usage) != nil {
		return 0
	}
	toMs := func(t syscall.Timeval) float64 { return float64(t.Sec)*1e3 + float64(t.Usec)/1e3 }
	return toMs(usage.Utime) + toMs(usage.Stime)
}

// emit writes one JSON result line with this process's CPU time added.
func emit(result map[string]interface{}) {
	result["cpuMs"] = cpuMs()
	line, _ := json.Marshal(result)
	os.Stdout.Write(append(line, '\n'))
}

func millis(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

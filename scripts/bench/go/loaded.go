// The loaded scenario's two load processes, each its own process so neither delays the other's clock: `streams`
// keeps K connections echoing 256 KiB chunks as fast as they go; `probe` opens one new connection every interval and
// times connect + hello + first echoed byte. Both print "connected", start on "go" (stdin) and measure from go +
// warm-up for the given time; `streams` keeps its load on until "stop" (stdin), then prints its JSON result. Both
// report their CPU time at "go" and at the end, and `streams` every byte echoed since "go", for the cost per byte.
package main

import (
	"bufio"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const chunkSize = 256 << 10

// probeGiveUp: a probe not answered within this long counts as failed (the proxy's hello timeout is 10 s).
const probeGiveUp = 10 * time.Second

func stdinLines() <-chan string {
	lines := make(chan string)
	go func() {
		scanner := bufio.NewScanner(os.Stdin)
		for scanner.Scan() {
			lines <- scanner.Text()
		}
		close(lines)
	}()
	return lines
}

func waitFor(lines <-chan string, want string) {
	for line := range lines {
		if line == want {
			return
		}
	}
	os.Exit(1)
}

// connectStream opens one stream: a blocking connect, the hello and its echo, then non-blocking for the loop.
func connectStream(t target) (int, error) {
	fd, err := dialRaw(t.port, false)
	if err != nil {
		return -1, err
	}
	noDelay(fd)
	if err := writeAll(fd, t.hello); err == nil {
		err = readAtLeast(fd, make([]byte, len(t.hello)), len(t.hello))
	}
	if err == nil {
		err = syscall.SetNonblock(fd, true)
	}
	if err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

func runStreams(args []string) error {
	set, parsed := targetFlags("streams")
	count := set.Int("streams", 64, "connections")
	warmup := set.Int("warmup", 1000, "ms before measuring")
	measure := set.Int("measure", 5000, "ms measured")
	window := set.Int("window", chunkSize, "unechoed bytes per stream, 0 = no limit")
	if err := set.Parse(args); err != nil {
		return err
	}
	t, err := parsed()
	if err != nil {
		return err
	}
	var failed int64
	var fds []int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < *count; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fd, err := connectStream(t)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
			} else {
				fds = append(fds, fd)
			}
		}()
	}
	wg.Wait()
	lines := stdinLines()
	os.Stdout.WriteString("connected\n")
	waitFor(lines, "go")
	cpuAtGo := cpuMs()
	load, err := newStreamLoad(fds, *window)
	if err != nil {
		return err
	}
	go load.run()
	var from time.Time
	var seconds float64
	var windowMu sync.Mutex
	endWindow := func() {
		windowMu.Lock()
		defer windowMu.Unlock()
		if load.measuring.Swap(false) {
			seconds = time.Since(from).Seconds()
		}
	}
	time.AfterFunc(time.Duration(*warmup)*time.Millisecond, func() {
		windowMu.Lock()
		from = time.Now()
		load.measuring.Store(true)
		windowMu.Unlock()
		time.AfterFunc(time.Duration(*measure)*time.Millisecond, endWindow)
	})
	waitFor(lines, "stop")
	endWindow()
	load.stopping.Store(true)
	emit(map[string]interface{}{"streams": *count, "bytes": load.measured.Load(), "seconds": seconds,
		"failed": failed + load.lost.Load(), "bytesSinceGo": load.sinceGo.Load(), "cpuAtGoMs": cpuAtGo})
	os.Exit(0)
	return nil
}

func runProbe(args []string) error {
	set, parsed := targetFlags("probe")
	interval := set.Int("interval", 10, "ms between new connections")
	warmup := set.Int("warmup", 1000, "ms before measuring")
	measure := set.Int("measure", 5000, "ms measured")
	if err := set.Parse(args); err != nil {
		return err
	}
	t, err := parsed()
	if err != nil {
		return err
	}
	lines := stdinLines()
	os.Stdout.WriteString("connected\n")
	waitFor(lines, "go")
	cpuAtGo := cpuMs()
	time.Sleep(time.Duration(*warmup) * time.Millisecond)
	var mu sync.Mutex
	var samples []time.Duration
	var failed atomic.Int64
	var inFlight sync.WaitGroup
	ticker := time.NewTicker(time.Duration(*interval) * time.Millisecond)
	end := time.After(time.Duration(*measure) * time.Millisecond)
	for running := true; running; {
		select {
		case <-ticker.C:
			inFlight.Add(1)
			go func() {
				defer inFlight.Done()
				elapsed, err := firstByte(t, probeGiveUp)
				if err != nil {
					failed.Add(1)
					return
				}
				mu.Lock()
				samples = append(samples, elapsed)
				mu.Unlock()
			}()
		case <-end:
			running = false
		}
	}
	ticker.Stop()
	inFlight.Wait()
	emit(map[string]interface{}{"samples": sortedMillis(samples), "failed": failed.Load(), "cpuAtGoMs": cpuAtGo})
	os.Exit(0)
	return nil
}

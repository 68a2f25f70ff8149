package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sync/errgroup"
)

// The WebSocket floor is what a bare gorilla/websocket connection costs a
// Go server on this machine, with nothing of GraphQL: the reference that
// says how much of the chat memory figure is the transport's own. The bench
// binary runs the bare server itself (`bench _wsfloor <mode>`), so that its
// memory is a process of its own, measured like Brook's.

// floorServerArg is the hidden first argument that runs the bare server.
const floorServerArg = "_wsfloor"

// floorModes are the bare servers measured, by mode: how each keeps an
// idle connection.
var floorModes = []struct{ mode, what string }{
	{"reading", "bare gorilla/websocket, no GraphQL: the HTTP handler's goroutine reads, through net/http's buffers"},
	{"returned", "bare gorilla/websocket, no GraphQL: the HTTP handler returns, one reader goroutine, write buffers pooled"},
}

// runFloorServer serves bare WebSocket connections on a free loopback port,
// printed on the first line of stdout, until it is killed.
func runFloorServer(mode string) error {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	if mode == "returned" {
		up.WriteBufferPool = &sync.Pool{}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	read := func(c *websocket.Conn) {
		defer c.Close()
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}
	fmt.Println(ln.Addr().String())
	heap := pprof.Handler("heap")
	return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			heap.ServeHTTP(w, r) // the live heap, as Brook's pprof listener gives it
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		if mode == "returned" {
			go read(c)
			return
		}
		read(c)
	}))
}

// wsFloor starts a bare server in the given mode, opens n idle connections
// to it and adds the server's RSS per connection to t.
func wsFloor(ctx context.Context, t *table, n int, mode, what string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], floorServerArg, mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("bare server: %w", err)
	}
	url := "ws://" + strings.TrimSpace(addr) + "/"
	heapURL := "http://" + strings.TrimSpace(addr) + "/debug/pprof/heap"
	return memoryPerConnection(t, what, cmd.Process.Pid, heapURL, n, func(i int) (io.Closer, error) {
		c, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
		if err != nil {
			return nil, err
		}
		// One message, as a client's connection_init, so the server has
		// read from every connection.
		return c, c.WriteMessage(websocket.TextMessage, []byte(`{"type":"connection_init"}`))
	})
}

// memoryPerConnection opens n idle connections with open (64 at a time)
// and adds to t the process's RSS before, after a settle, and per
// connection, and the live heap per connection: what a collection leaves
// (read from heapURL, a pprof heap endpoint, after the RSS), which the
// collector's timing moves far less than the RSS. The connections are
// closed when it returns.
func memoryPerConnection(t *table, what string, pid int, heapURL string, n int, open func(i int) (io.Closer, error)) error {
	time.Sleep(time.Second)
	before, err := rssOf(pid)
	if err != nil {
		return err
	}
	liveBefore, err := liveHeap(heapURL)
	if err != nil {
		return err
	}
	conns := make([]io.Closer, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	var g errgroup.Group
	g.SetLimit(64)
	for i := range conns {
		g.Go(func() error {
			c, err := open(i)
			conns[i] = c
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("idle connections: %w", err)
	}
	time.Sleep(5 * time.Second)
	if d, err := time.ParseDuration(os.Getenv("BENCH_HOLD")); err == nil && d > 0 {
		// Time to take the server's heap and goroutine profiles
		// (BENCH_PPROF=1) with the connections open.
		fmt.Fprintf(os.Stderr, "bench: holding %d connections for %s (pid %d)\n", n, d, pid)
		time.Sleep(d)
	}
	after, err := rssOf(pid)
	if err != nil {
		return err
	}
	if after < before {
		return errors.New("RSS fell while connections opened")
	}
	liveAfter, err := liveHeap(heapURL)
	if err != nil {
		return err
	}
	t.add(what, n, fmt.Sprintf("%.1f MB", float64(before)/1e6), fmt.Sprintf("%.1f MB", float64(after)/1e6),
		fmt.Sprintf("%.1f KB", float64(after-before)/float64(n)/1024),
		fmt.Sprintf("%.1f KB", float64(liveAfter-liveBefore)/float64(n)/1024))
	return nil
}

// liveHeap collects garbage in the server behind heapURL (a pprof heap
// endpoint) and returns its heap in use after the collection (HeapAlloc).
func liveHeap(heapURL string) (int64, error) {
	resp, err := http.Get(heapURL + "?gc=1&debug=1")
	if err != nil {
		return 0, fmt.Errorf("live heap: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("live heap: no HeapAlloc at %s (%v)", heapURL, sc.Err())
}

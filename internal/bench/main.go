// Command bench measures Brook on this machine and prints a Markdown table
// per measurement, headed by the command, the machine and the date, ready
// for the README:
//
//	go run ./internal/bench feeds     (make bench-feeds)
//	go run ./internal/bench chat      (make bench-chat)
//	go run ./internal/bench calls     (make bench-calls)
//	go run ./internal/bench soak      (make soak)
//
// It starts its own private PostgreSQL and Redis servers (durable settings,
// as in production) and real Brook server processes, and drives them as
// clients would. Benchmarks are never timed assertions in tests.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

// benchmarks maps a name to its run function.
var benchmarks = map[string]func(ctx context.Context, h *harness, args []string) error{}

func main() {
	if len(os.Args) == 3 && os.Args[1] == floorServerArg {
		if err := runFloorServer(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) < 2 || benchmarks[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: go run ./internal/bench <name> [flags]; names:")
		for name := range benchmarks {
			fmt.Fprintln(os.Stderr, "  "+name)
		}
		os.Exit(2)
	}
	name, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	keep := fs.Bool("keep", false, "keep the benchmark's data directory")
	_ = fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" {
		// The load generator's own CPU profile: it shares the cores with
		// the servers it measures.
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	h, err := newHarness(ctx, name, *keep)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	err = benchmarks[name](ctx, h, fs.Args())
	h.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

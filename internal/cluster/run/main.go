// Command run is `make cluster`: three Brook nodes behind HAProxy, with
// the PostgreSQL and Redis they share, all under one directory, until
// Ctrl-C stops them together. It prints the one URL to use.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/brookhq/brook/internal/cluster"
)

func main() {
	bin := flag.String("bin", ".data/brook", "the Brook binary each node runs")
	dir := flag.String("dir", ".data/cluster", "directory for the servers' data, the nodes' logs and haproxy.cfg")
	nodes := flag.Int("nodes", 3, "how many Brook nodes")
	port := flag.Int("port", 8080, "HAProxy's port: the one URL clients use")
	statsPort := flag.Int("stats-port", 8404, "HAProxy's stats page")
	redisCluster := flag.Bool("redis-cluster", true, "a three-master Redis Cluster with a replica each (false: one Redis)")
	replica := flag.Bool("replica", true, "a streaming PostgreSQL replica for reads (DATABASE_REPLICA_URLS; false: none)")
	flag.Parse()
	if err := run(*bin, *dir, *nodes, *port, *statsPort, *redisCluster, *replica); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func run(bin, dir string, nodes, port, statsPort int, redisCluster, replica bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	// The nodes write fresh dev tokens once they serve; an older file's
	// may have expired.
	tokens := filepath.Join(dir, "files", "tokens.env")
	_ = os.Remove(tokens)
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c, err := cluster.Start(startCtx, cluster.Options{Dir: dir, Binary: abs, Nodes: nodes, Port: port, StatsPort: statsPort,
		Durable: true, RedisCluster: redisCluster, PostgresReplica: replica,
		// Dev mode on every node: demo users, /dev/token and the welcome
		// tokens (written to the shared files directory).
		Env: map[string]string{"BROOK_DEV": "true"}})
	if err != nil {
		return err
	}
	defer c.Stop()
	waitForFile(ctx, tokens, 10*time.Second)
	fmt.Printf(`
  Brook cluster is running: %d nodes behind HAProxy.

    URL        %s/   (GraphiQL; API %s/query, WebSocket on the same path)
    HAProxy    %s   (stats: which node is up, connections per node)
    Tokens     %s
`, len(c.Nodes), c.URL, c.URL, c.StatsURL, tokens)
	for _, n := range c.Nodes {
		fmt.Printf("    %-10s %s   (pid %d, its own /healthz and /metrics; log %s)\n", n.Name, n.URL, n.Pid(), filepath.Join(dir, n.Name+".log"))
	}
	fmt.Printf("    PostgreSQL %s\n    Redis      %s\n\n  Ctrl-C stops it all.\n\n", c.DatabaseURL, c.RedisURL)
	<-ctx.Done()
	fmt.Println("stopping: HAProxy, the nodes (draining), then PostgreSQL and Redis")
	return nil
}

// waitForFile waits until path exists, for at most d: the first node to
// serve writes the dev tokens a moment after its /healthz answers.
func waitForFile(ctx context.Context, path string, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

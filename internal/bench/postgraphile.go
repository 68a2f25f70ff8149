package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/client"
)

// The PostGraphile comparison (issue 22): the history page's query through
// PostGraphile 4 on the same database, driven by the same load generator.
// PostGraphile compiles the whole operation into one SQL statement that
// builds the JSON in PostgreSQL; the reaction counts are a computed column
// (a STABLE SQL function taking the row type), as a PostGraphile user would
// write them.

// postGraphileVersion is what npm installs: the last major version with a
// CLI that reflects a schema by itself (5 needs a preset file).
const postGraphileVersion = "postgraphile@4"

// postGraphileDir caches the npm install across runs, under the tree's
// .data/ (ignored by git), relative to the repository root that `make
// bench-chat` runs from.
var postGraphileDir = filepath.Join(".data", "bench-postgraphile")

// postGraphileSchema is what PostGraphile reflects: views of the history
// page's columns, with smart comments for the keys views lack, and the
// computed column. Bench-only (no migration); plain SQL.
const postGraphileSchema = `
CREATE SCHEMA IF NOT EXISTS bench_pgl;
CREATE OR REPLACE VIEW bench_pgl.users AS SELECT id, name FROM public.users;
CREATE OR REPLACE VIEW bench_pgl.channels AS SELECT id, type FROM public.channels;
CREATE OR REPLACE VIEW bench_pgl.messages AS
	SELECT id, channel_id, pos, user_id, text, created_at FROM public.messages WHERE parent_id IS NULL;
COMMENT ON VIEW bench_pgl.users IS '@primaryKey id';
COMMENT ON VIEW bench_pgl.channels IS '@primaryKey id';
COMMENT ON VIEW bench_pgl.messages IS E'@primaryKey id\n@foreignKey (user_id) references bench_pgl.users (id)\n@foreignKey (channel_id) references bench_pgl.channels (id)';
CREATE OR REPLACE FUNCTION bench_pgl.messages_reaction_counts(m bench_pgl.messages) RETURNS json
LANGUAGE sql STABLE AS $$
	SELECT coalesce(json_agg(json_build_object('kind', kind, 'count', n) ORDER BY n DESC, kind), '[]')
	FROM (SELECT kind, count(*) AS n FROM public.message_reactions WHERE message_id = m.id GROUP BY kind) k
$$;
`

// postGraphileQuery is the history page in PostGraphile's schema: the
// channel, its newest 50 messages in order, each with the author's name and
// the reaction counts.
const postGraphileQuery = `{ channelById(id: "messaging:hist") { messagesByChannelId(last: 50, orderBy: POS_ASC) { edges { node { id text createdAt userByUserId { name } reactionCounts } } } } }`

// loadRun is the history part's load generator: f at a fixed concurrency
// for a fixed time; pages/s and latencies.
type loadRun func(f func() error) (float64, *latencies, error)

// postGraphileRows adds the PostGraphile rows to the history table t: one
// node process, then --cluster-workers 2, then Brook's page again (brook)
// so drift on a shared machine shows. Each row's CPU per page, PostgreSQL's
// backends and the server's processes, goes into the table's notes: CPU a
// loaded machine disturbs less than pages/s. Without node and npm, or when
// the install fails, it says so in the notes and returns nil.
func postGraphileRows(ctx context.Context, h *harness, t *table, run loadRun, brookServer *server, brook func() error) error {
	bin, version, err := installPostGraphile(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: PostGraphile skipped: %v\n", err)
		t.note("PostGraphile rows skipped: %v.", err)
		return nil
	}
	db, err := pgx.Connect(ctx, h.env.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close(ctx)
	if _, err := db.Exec(ctx, postGraphileSchema); err != nil {
		return fmt.Errorf("postgraphile schema: %w", err)
	}
	pgCPU, err := postgresCPU(ctx, db)
	if err != nil {
		return err
	}
	rdCPU := redisCPU(ctx, h.env.RedisURL)
	var cpuNotes []string
	measure := func(what string, conc int, f func() error, serverCPU func() time.Duration) error {
		pg0, rd0, srv0 := pgCPU(), rdCPU(), serverCPU()
		rate, lat, err := run(f)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		pgUsed, rdUsed, srvUsed := pgCPU()-pg0, rdCPU()-rd0, serverCPU()-srv0
		p50, p99, _, pages := lat.summary()
		pgPer, rdPer, srvPer := perPage(pgUsed, pages), perPage(rdUsed, pages), perPage(srvUsed, pages)
		t.add(what, conc, fmt.Sprintf("%.0f", rate), ms(p50), ms(p99))
		line := fmt.Sprintf("PostgreSQL %s, Redis %s, server %s, together %s", msPer(pgPer), msPer(rdPer), msPer(srvPer), msPer(pgPer+rdPer+srvPer))
		cpuNotes = append(cpuNotes, what+": "+line)
		fmt.Fprintf(os.Stderr, "bench: %s: %.0f pages/s, CPU per page: %s\n", what, rate, line)
		return nil
	}
	for _, workers := range []int{1, 2} {
		settle()
		fmt.Fprintf(os.Stderr, "bench: PostGraphile %s, %d worker(s)\n", version, workers)
		pg, err := startPostGraphile(ctx, h, bin, workers)
		if err != nil {
			return err
		}
		c := client.New(pg.url, "")
		if err := checkPostGraphilePage(ctx, c); err != nil {
			pg.stop()
			return err
		}
		what := fmt.Sprintf("PostGraphile %s, computed column, 1 process", version)
		if workers > 1 {
			what = fmt.Sprintf("PostGraphile %s, computed column, --cluster-workers %d", version, workers)
		}
		err = measure(what, 8, func() error { return c.Run(ctx, postGraphileQuery, nil, nil) }, pg.cpu)
		pg.stop()
		if err != nil {
			return err
		}
	}
	settle()
	if err := measure("Brook GraphQL over HTTP, again after PostGraphile", 8, brook, func() time.Duration { c, _ := brookServer.CPUTime(); return c }); err != nil {
		return err
	}
	t.note("PostGraphile %s (npm, cached in %s) reflects views of the same tables (schema bench_pgl, smart comments for the keys) "+
		"with the reaction counts as a computed column, a STABLE SQL function `messages_reaction_counts(m messages) RETURNS json` "+
		"(run with --dynamic-json, -M, --disable-query-log; no JWT, so no auth or membership check, which Brook's page does): "+
		"`%s`. It compiles the operation into one statement that builds the JSON in PostgreSQL. "+
		"CPU per page (PostgreSQL backends; Redis, which Brook's rate limits use; server processes, workers included): %s.",
		version, postGraphileDir, postGraphileQuery, strings.Join(cpuNotes, "; "))
	return nil
}

// installPostGraphile installs PostGraphile 4 into postGraphileDir once and
// returns its CLI and version.
func installPostGraphile(ctx context.Context) (bin, version string, err error) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", "", fmt.Errorf("%s is not installed (PostGraphile runs on Node.js)", tool)
		}
	}
	pkg := filepath.Join(postGraphileDir, "node_modules", "postgraphile")
	if _, err := os.Stat(filepath.Join(pkg, "cli.js")); err != nil {
		if err := os.MkdirAll(postGraphileDir, 0o755); err != nil {
			return "", "", err
		}
		fmt.Fprintf(os.Stderr, "bench: npm install %s into %s\n", postGraphileVersion, postGraphileDir)
		cmd := exec.CommandContext(ctx, "npm", "install", "--prefix", postGraphileDir, "--no-audit", "--no-fund", "--loglevel=error", postGraphileVersion)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("npm install %s: %w: %s", postGraphileVersion, err, strings.TrimSpace(string(out)))
		}
	}
	b, err := os.ReadFile(filepath.Join(pkg, "package.json"))
	if err != nil {
		return "", "", err
	}
	var meta struct{ Version string }
	if err := json.Unmarshal(b, &meta); err != nil {
		return "", "", fmt.Errorf("postgraphile package.json: %w", err)
	}
	return filepath.Join(pkg, "cli.js"), meta.Version, nil
}

// postGraphile is a running PostGraphile server.
type postGraphile struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// startPostGraphile starts PostGraphile in its own process group (its
// cluster workers are its children) and waits until it answers.
func startPostGraphile(ctx context.Context, h *harness, cli string, workers int) (*postGraphile, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := []string{cli, "-c", h.env.DatabaseURL, "--schema", "bench_pgl", "-n", "127.0.0.1", "-p", strconv.Itoa(port),
		"-q", "/query", "--disable-graphiql", "--disable-default-mutations", "--dynamic-json", "--disable-query-log"}
	if workers > 1 {
		args = append(args, "--cluster-workers", strconv.Itoa(workers))
	}
	logFile, err := os.Create(filepath.Join(h.dir, fmt.Sprintf("postgraphile-%d.log", workers)))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", args...)
	cmd.Env = append(os.Environ(), "NODE_ENV=production")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start postgraphile: %w", err)
	}
	p := &postGraphile{url: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, done: make(chan struct{}), log: logFile}
	go func() { _ = cmd.Wait(); close(p.done) }()
	c := client.New(p.url, "")
	deadline := time.Now().Add(60 * time.Second)
	for {
		// With workers, the first answer says one is up, not which: give
		// the others a moment before the load starts.
		if err := c.Run(ctx, `{ __typename }`, nil, nil); err == nil {
			if workers > 1 {
				time.Sleep(3 * time.Second)
			}
			return p, nil
		}
		select {
		case <-p.done:
			logFile.Close()
			return nil, fmt.Errorf("postgraphile exited at start; see %s", logFile.Name())
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("postgraphile did not answer in 60 s; see %s", logFile.Name())
		}
	}
}

// stop ends PostGraphile's process group (master and workers) and waits
// for the master.
func (p *postGraphile) stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	p.log.Close()
}

// cpu is the CPU time of PostGraphile's processes (the master and its
// cluster workers) so far.
func (p *postGraphile) cpu() time.Duration {
	return treeCPU(p.cmd.Process.Pid)
}

// checkPostGraphilePage makes sure the page PostGraphile serves is the
// page Brook serves: 50 messages, each with an author and reaction counts.
func checkPostGraphilePage(ctx context.Context, c *client.Client) error {
	var page struct {
		ChannelByID struct {
			MessagesByChannelID struct {
				Edges []struct {
					Node struct {
						Text           string
						UserByUserID   struct{ Name string } `json:"userByUserId"`
						ReactionCounts []struct {
							Kind  string
							Count int
						}
					}
				}
			} `json:"messagesByChannelId"`
		} `json:"channelById"`
	}
	if err := c.Run(ctx, postGraphileQuery, nil, &page); err != nil {
		return fmt.Errorf("postgraphile page: %w", err)
	}
	edges := page.ChannelByID.MessagesByChannelID.Edges
	if len(edges) != 50 || edges[49].Node.Text != "history message 199" || edges[0].Node.UserByUserID.Name == "" {
		return errors.New("postgraphile page: not the newest 50 messages in order with their authors")
	}
	reacted := 0
	for _, e := range edges {
		reacted += len(e.Node.ReactionCounts)
	}
	if reacted == 0 {
		return errors.New("postgraphile page: no reaction counts")
	}
	return nil
}

// postgresCPU returns a function giving the CPU time PostgreSQL's processes
// (the postmaster's children: backends and background processes) have used
// so far. Backends that exit in between are not counted; the servers
// measured keep their pools open.
func postgresCPU(ctx context.Context, db *pgx.Conn) (func() time.Duration, error) {
	var backend int
	if err := db.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		return nil, err
	}
	postmaster, ok := procStat(backend)
	if !ok {
		return nil, fmt.Errorf("bench: PostgreSQL backend %d not found in /proc (a remote database?)", backend)
	}
	return func() time.Duration { return treeCPU(postmaster.ppid) }, nil
}

// redisCPU returns a function giving the CPU time the Redis server has
// used so far (zero throughout when its process cannot be read: a remote
// server).
func redisCPU(ctx context.Context, url string) func() time.Duration {
	zero := func() time.Duration { return 0 }
	opts, err := redis.ParseURL(url)
	if err != nil {
		return zero
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return zero
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			if pid, err := strconv.Atoi(v); err == nil {
				if _, ok := procStat(pid); ok {
					return func() time.Duration { return selfTime(pid) }
				}
			}
		}
	}
	return zero
}

// stat is what the benchmark reads from /proc/<pid>/stat.
type stat struct {
	ppid int
	cpu  time.Duration // utime + stime
}

// procStat reads a process's parent and CPU time.
func procStat(pid int) (stat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return stat{}, false
	}
	// Fields after the command name: state, ppid, ... utime (12th), stime (13th).
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return stat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return stat{ppid: ppid, cpu: time.Duration(utime+stime) * time.Second / 100}, true // USER_HZ is 100 on Linux
}

// selfTime is one process's own CPU time.
func selfTime(pid int) time.Duration {
	s, _ := procStat(pid)
	return s.cpu
}

// treeCPU is the CPU time of a process and its live children (one level:
// PostgreSQL's backends, PostGraphile's workers).
func treeCPU(root int) time.Duration {
	total := selfTime(root)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, ok := procStat(pid); ok && s.ppid == root {
			total += s.cpu
		}
	}
	return total
}

// perPage divides the CPU time of a run by its pages.
func perPage(cpu time.Duration, pages int) time.Duration {
	if pages <= 0 {
		return 0
	}
	return cpu / time.Duration(pages)
}

// msPer formats a per-page duration in milliseconds with three decimals.
func msPer(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Nanoseconds())/1e6) }

package cluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Process is one child process with its output in a log file: a Brook
// node or HAProxy here, and the Brook processes of the fault tests.
type Process struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// StartProcess starts bin with args and env (added to ours), its output
// appended to logPath.
func StartProcess(bin string, args []string, env []string, logPath string) (*Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group: Ctrl-C reaches only the launcher, which stops
	// the parts in order (balancer, nodes, then servers). Pdeathsig: the
	// child dies with the launcher, whatever happens to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("cluster: start %s: %w", filepath.Base(bin), err)
	}
	p := &Process{cmd: cmd, log: logPath, done: make(chan struct{})}
	// The waiter is owned by the process: it ends when the process does.
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Alive reports whether the process still runs.
func (p *Process) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Kill ends the process with SIGKILL, as a crash or an OOM kill would,
// and waits until it is gone.
func (p *Process) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Freeze stops the process (SIGSTOP) without ending it; Thaw resumes it.
func (p *Process) Freeze() error { return p.cmd.Process.Signal(syscall.SIGSTOP) }

// Thaw resumes a frozen process.
func (p *Process) Thaw() error { return p.cmd.Process.Signal(syscall.SIGCONT) }

// Stop ends the process with SIGTERM, and SIGKILL after 20 s.
func (p *Process) Stop() { p.StopWithin(20 * time.Second) }

// StopWithin ends the process with SIGTERM, and SIGKILL after d.
func (p *Process) StopWithin(d time.Duration) {
	if !p.Alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(d):
		p.Kill()
	}
}

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Log returns what the process has written so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// Node is one Brook node of the cluster.
type Node struct {
	*Process
	// Name is the node's name in HAProxy (node1, node2, ...).
	Name string
	// Addr is the node's own host:port; URL its base URL, for its
	// /healthz and /metrics.
	Addr, URL string
}

// startNode starts one Brook node on a free port and waits until its
// /healthz answers 200.
func (c *Cluster) startNode(ctx context.Context, name string) (*Node, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	vars := map[string]string{
		"DATABASE_URL": c.DatabaseURL + "&application_name=brook-" + name,
		"REDIS_URL":    c.RedisURL, "BROOK_JWT_SECRET": c.JWTSecret, "BROOK_ADDR": addr,
		// One directory for every node's files: local-disk uploads must be
		// readable through whichever node a request reaches.
		"BROOK_DATA_DIR": filepath.Join(c.opts.Dir, "files"),
		// Every client reaches a node from HAProxy's address: per-address
		// caps belong at the balancer.
		"BROOK_MAX_CONNECTIONS_PER_ADDRESS": "0",
	}
	if len(c.ReplicaURLs) > 0 {
		vars["DATABASE_REPLICA_URLS"] = joinComma(c.ReplicaURLs)
	}
	for k, v := range c.opts.Env {
		vars[k] = v
	}
	env := make([]string, 0, len(vars))
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	p, err := StartProcess(c.opts.Binary, nil, env, filepath.Join(c.opts.Dir, name+".log"))
	if err != nil {
		return nil, err
	}
	n := &Node{Process: p, Name: name, Addr: addr, URL: "http://" + addr}
	if err := n.waitHealthy(ctx); err != nil {
		n.Kill()
		return nil, err
	}
	return n, nil
}

// waitHealthy waits until the node's /healthz answers 200.
func (n *Node) waitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.URL+"/healthz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-n.done:
			return fmt.Errorf("cluster: %s exited at start; its log %s ends:\n%s", n.Name, n.log, tail(n.Log(), 3000))
		case <-ctx.Done():
			return fmt.Errorf("cluster: %s not healthy: %w; its log %s ends:\n%s", n.Name, ctx.Err(), n.log, tail(n.Log(), 3000))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func joinComma(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("cluster: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Package local runs private PostgreSQL and Redis servers as child processes,
// each in a directory of its own, on free loopback ports.
//
// `make run` uses it to start Brook with zero configuration (under ./.data),
// and the tests use it to get real, throwaway databases. Nothing here is a
// fake: these are the real server binaries from the machine's packages.
package local

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
)

// ErrMissingBinary means a server binary is not installed.
var ErrMissingBinary = errors.New("local: server binary not found")

// installHint says exactly what to install when a binary is missing.
const installHint = "install PostgreSQL 15+ and Redis server binaries " +
	"(Debian/Ubuntu: `sudo apt-get install -y postgresql redis-server`; " +
	"macOS: `brew install postgresql@16 redis`), or set DATABASE_URL and REDIS_URL"

// findBinary looks for name on PATH and then in the places Debian and
// Homebrew keep PostgreSQL server binaries, which are not on PATH by default.
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var candidates []string
	for _, pattern := range []string{
		"/usr/lib/postgresql/*/bin/" + name,
		"/usr/local/opt/postgresql*/bin/" + name,
		"/opt/homebrew/opt/postgresql*/bin/" + name,
		"/usr/pgsql-*/bin/" + name,
	} {
		m, _ := filepath.Glob(pattern)
		candidates = append(candidates, m...)
	}
	if len(candidates) == 0 {
		return "", fmt.Errorf("%w: %s: %s", ErrMissingBinary, name, installHint)
	}
	// The newest version sorts last.
	sort.Slice(candidates, func(i, j int) bool { return versionOf(candidates[i]) < versionOf(candidates[j]) })
	return candidates[len(candidates)-1], nil
}

// versionOf extracts the major version from paths like /usr/lib/postgresql/15/bin/initdb.
func versionOf(path string) int {
	dir := filepath.Dir(filepath.Dir(path))
	n, _ := strconv.Atoi(filepath.Base(dir))
	return n
}

// freePort asks the kernel for a free loopback TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("local: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// runAs is the account that server processes run as. PostgreSQL refuses to
// run as root, so when we are root the servers run as the `postgres` account
// (created by Debian's package) or, failing that, `nobody`.
type runAs struct {
	cred *syscall.Credential
	uid  int
	gid  int
}

func serverAccount() (runAs, error) {
	if os.Geteuid() != 0 {
		return runAs{uid: os.Getuid(), gid: os.Getgid()}, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return runAs{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid: uid, gid: gid}, nil
	}
	return runAs{}, errors.New("local: running as root and no unprivileged account (postgres or nobody) exists to run PostgreSQL")
}

// serverDir returns the server account and dir made absolute, created and
// handed to that account: what every private server needs before it starts.
func serverDir(dir string) (runAs, string, error) {
	account, err := serverAccount()
	if err != nil {
		return runAs{}, "", err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return runAs{}, "", fmt.Errorf("local: %w", err)
	}
	if err := account.prepareDir(dir); err != nil {
		return runAs{}, "", err
	}
	return account, dir, nil
}

// prepareDir creates dir (and its parents) and hands it to the server account.
// Parents are made traversable so an unprivileged server can reach dir.
func (a runAs) prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("local: create %s: %w", dir, err)
	}
	if a.cred == nil {
		return nil
	}
	err := filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, a.uid, a.gid)
	})
	if err != nil {
		return fmt.Errorf("local: chown %s: %w", dir, err)
	}
	for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			break
		}
		if st.Mode().Perm()&0o001 == 0 {
			_ = os.Chmod(p, st.Mode().Perm()|0o011)
		}
	}
	return nil
}

// command builds a server command that runs as the server account and is
// signalled when this process dies, so no server outlives its owner.
func (a runAs) command(deathSignal syscall.Signal, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: a.cred, Pdeathsig: deathSignal, Setpgid: true}
	return cmd
}

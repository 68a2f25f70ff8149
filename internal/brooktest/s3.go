package brooktest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/brookhq/brook/internal/blob"
)

// S3 is a SeaweedFS server (`weed server -s3`) a test started: a real
// S3-compatible service on loopback ports, with one access key.
type S3 struct {
	// Endpoint is host:port of its S3 API (plain HTTP, path-style).
	Endpoint             string
	AccessKey, SecretKey string
}

// Options returns the blob options for bucket on this server.
func (s *S3) Options(bucket string) blob.S3Options {
	return blob.S3Options{Endpoint: s.Endpoint, Bucket: bucket, AccessKey: s.AccessKey, SecretKey: s.SecretKey, PathStyle: true}
}

// NewBucket creates a bucket with a fresh name and returns the store of
// it.
func (s *S3) NewBucket(t testing.TB) *blob.S3 {
	t.Helper()
	name := "brook-" + Tag()
	st, err := blob.NewS3(s.Options(name))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// SeaweedFS needs a moment after its port opens before buckets can be
	// made (its filer and volume servers join): retried.
	var lastErr error
	for ctx.Err() == nil {
		if lastErr = st.Client().MakeBucket(ctx, name, minio.MakeBucketOptions{}); lastErr == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if lastErr != nil {
		t.Fatalf("brooktest: create bucket %s: %v", name, lastErr)
	}
	// A bucket can exist before a volume takes its objects (a PUT then
	// answers 500 InternalError, seen on a fresh machine): the bucket is
	// ready when a probe object is stored.
	for ctx.Err() == nil {
		if _, lastErr = st.Client().PutObject(ctx, name, "brooktest-probe", strings.NewReader("ok"), 2,
			minio.PutObjectOptions{ContentType: "text/plain"}); lastErr == nil {
			if lastErr = st.Client().RemoveObject(ctx, name, "brooktest-probe", minio.RemoveObjectOptions{}); lastErr == nil {
				return st
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("brooktest: bucket %s takes no object: %v", name, lastErr)
	return nil
}

// weedBinary returns the path of the `weed` binary scripts/weed builds
// (and caches under .data/bin), building it if needed. It skips the test
// when the build is impossible here (no Go module proxy, say), unless
// BROOK_S3_TESTS=required, as `make test` sets after building it.
func weedBinary(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(root, "scripts", "weed")).Output()
	if err != nil {
		msg := fmt.Sprintf("brooktest: SeaweedFS could not be built (scripts/weed: %v): the S3 tests need it", err)
		if ee, ok := err.(*exec.ExitError); ok {
			msg += "\n" + string(ee.Stderr)
		}
		if os.Getenv("BROOK_S3_TESTS") == "required" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return strings.TrimSpace(string(out))
}

// repoRoot is the directory of the go.mod above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("brooktest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// freePorts returns n loopback ports nothing listens on now.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// StartS3 starts a SeaweedFS server with an S3 API in a temporary
// directory, stopped when the test ends.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	bin := weedBinary(t)
	dir := t.TempDir()
	s := &S3{AccessKey: "brooktest-access", SecretKey: "brooktest-secret-" + Tag() + Tag()}
	cfg := fmt.Sprintf(`{"identities":[{"name":"brook","credentials":[{"accessKey":%q,"secretKey":%q}],
		"actions":["Admin","Read","Write","List","Tagging"]}]}`, s.AccessKey, s.SecretKey)
	if err := os.WriteFile(filepath.Join(dir, "s3.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := freePorts(t, 8)
	s.Endpoint = "127.0.0.1:" + strconv.Itoa(p[6])
	args := []string{"server", "-dir=" + filepath.Join(dir, "data"), "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port=" + strconv.Itoa(p[0]), "-master.port.grpc=" + strconv.Itoa(p[1]),
		"-volume.port=" + strconv.Itoa(p[2]), "-volume.port.grpc=" + strconv.Itoa(p[3]),
		"-filer.port=" + strconv.Itoa(p[4]), "-filer.port.grpc=" + strconv.Itoa(p[5]),
		"-filer.localSocket=" + filepath.Join(dir, "filer.sock"),
		"-s3", "-s3.port=" + strconv.Itoa(p[6]), "-s3.port.grpc=" + strconv.Itoa(p[7]), "-s3.port.iceberg=0", "-s3.port.lance=0",
		"-s3.localSocket=" + filepath.Join(dir, "s3.sock"), "-s3.config=" + filepath.Join(dir, "s3.json"),
		"-volume.max=4", "-master.volumeSizeLimitMB=64"}
	cmd := exec.Command(bin, args...)
	logf, err := os.Create(filepath.Join(dir, "weed.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("brooktest: start weed: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		// Sockets weed keeps in the system's temporary directory.
		for _, port := range p {
			matches, _ := filepath.Glob(filepath.Join(os.TempDir(), "seaweedfs-*-"+strconv.Itoa(port)+".sock"))
			for _, m := range matches {
				_ = os.Remove(m)
			}
		}
	})
	// Up when its S3 port answers.
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "weed.log"))
			t.Fatalf("brooktest: weed exited at start:\n%s", tail(string(log), 3000))
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Endpoint, time.Second); err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatal("brooktest: weed's S3 port did not open within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

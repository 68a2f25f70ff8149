package main

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/brookhq/brook/internal/blob"
	"github.com/brookhq/brook/uploads"
)

// UploadsConfig is where uploaded files are kept: S3 when BROOK_S3_BUCKET
// is set, else a directory on local disk (docs/uploads.md).
type UploadsConfig struct {
	// Dir is BROOK_UPLOADS_DIR (default <data dir>/uploads).
	Dir string
	// PublicURL is BROOK_PUBLIC_URL: Brook's address as clients reach it,
	// which local file URLs start with (default: the listening address).
	PublicURL string
	// S3 is BROOK_S3_*; S3.Bucket empty means local disk.
	S3 blob.S3Options
	// Limits are BROOK_UPLOAD_MAX_{IMAGE,VIDEO,AUDIO,FILE}_MB and
	// BROOK_UPLOAD_MAX_PENDING.
	Limits uploads.Limits
	// OrphanAge is BROOK_UPLOAD_ORPHAN_AGE: uploads never attached this
	// long after their creation are deleted (default 24h).
	OrphanAge time.Duration
}

// uploadsFromEnv reads UploadsConfig; errors go to errs.
func uploadsFromEnv(getenv func(string) string, dataDir string, errs *[]error) UploadsConfig {
	c := UploadsConfig{
		Dir:       firstSet(getenv("BROOK_UPLOADS_DIR"), filepath.Join(dataDir, "uploads")),
		PublicURL: strings.TrimRight(getenv("BROOK_PUBLIC_URL"), "/"),
		S3: blob.S3Options{Endpoint: getenv("BROOK_S3_ENDPOINT"), Bucket: getenv("BROOK_S3_BUCKET"),
			AccessKey: getenv("BROOK_S3_ACCESS_KEY"), SecretKey: getenv("BROOK_S3_SECRET_KEY"), Region: getenv("BROOK_S3_REGION")},
	}
	if u, err := url.Parse(c.PublicURL); c.PublicURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		*errs = append(*errs, fmt.Errorf("BROOK_PUBLIC_URL=%q: want an http or https URL like https://chat.example.com", c.PublicURL))
	}
	flag := func(name string, def bool) bool {
		v := getenv(name)
		if v == "" {
			return def
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("%s=%q: want true or false", name, v))
		}
		return b
	}
	c.OrphanAge = 24 * time.Hour
	if v := getenv("BROOK_UPLOAD_ORPHAN_AGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			*errs = append(*errs, fmt.Errorf("BROOK_UPLOAD_ORPHAN_AGE=%q: want a duration of at least 1m, like 24h", v))
		} else {
			c.OrphanAge = d
		}
	}
	c.S3.UseSSL = flag("BROOK_S3_USE_SSL", true)
	c.S3.PathStyle = flag("BROOK_S3_PATH_STYLE", false)
	if c.S3.Bucket != "" && (c.S3.Endpoint == "" || c.S3.AccessKey == "" || c.S3.SecretKey == "") {
		*errs = append(*errs, fmt.Errorf("BROOK_S3_BUCKET is set: BROOK_S3_ENDPOINT, BROOK_S3_ACCESS_KEY and BROOK_S3_SECRET_KEY are needed too"))
	}
	mb := func(name string, def int) int {
		v := getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 5<<10 {
			*errs = append(*errs, fmt.Errorf("%s=%q: want a whole number of megabytes from 1 to 5120", name, v))
			return def
		}
		return n << 20
	}
	c.Limits = uploads.Limits{
		Image: mb("BROOK_UPLOAD_MAX_IMAGE_MB", uploads.DefaultImageBytes), Video: mb("BROOK_UPLOAD_MAX_VIDEO_MB", uploads.DefaultVideoBytes),
		Audio: mb("BROOK_UPLOAD_MAX_AUDIO_MB", uploads.DefaultAudioBytes), File: mb("BROOK_UPLOAD_MAX_FILE_MB", uploads.DefaultFileBytes),
		MaxPending: uploads.DefaultMaxPending,
	}
	if v := getenv("BROOK_UPLOAD_MAX_PENDING"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			*errs = append(*errs, fmt.Errorf("BROOK_UPLOAD_MAX_PENDING=%q: want a whole number (0: no cap)", v))
		} else if c.Limits.MaxPending = n; n == 0 {
			c.Limits.MaxPending = -1
		}
	}
	return c
}

// openFiles returns the file store the configuration names. A local
// store's URLs are signed with a key derived from the token secret.
func openFiles(c UploadsConfig, tokenSecret []byte) (blob.Store, error) {
	if c.S3.Bucket != "" {
		return blob.NewS3(c.S3)
	}
	return blob.NewLocal(c.Dir, uploads.DeriveSecret(tokenSecret), c.PublicURL)
}

// publicURLOf is the address local file URLs use when BROOK_PUBLIC_URL is
// unset: the listener's, with a wildcard host read as localhost.
func publicURLOf(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

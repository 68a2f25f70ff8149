package main

import (
	"net"
	"testing"
	"time"
)

// Uploads need no configuration (local disk under the data directory);
// a half-configured S3 bucket, a bad public URL or a bad limit is refused
// at start.
func TestUploadsConfig(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := configFromEnv(env(map[string]string{"BROOK_DATA_DIR": "/var/brook"}))
	if err != nil || c.Uploads.Dir != "/var/brook/uploads" || c.Uploads.S3.Bucket != "" || c.Uploads.Limits.Image != 10<<20 || c.Uploads.Limits.MaxPending != 50 ||
		c.Uploads.OrphanAge != 24*time.Hour {
		t.Fatalf("defaults: %+v %v", c.Uploads, err)
	}
	c, err = configFromEnv(env(map[string]string{"BROOK_S3_BUCKET": "b", "BROOK_S3_ENDPOINT": "s3.amazonaws.com", "BROOK_S3_ACCESS_KEY": "k",
		"BROOK_S3_SECRET_KEY": "s", "BROOK_S3_REGION": "eu-west-1", "BROOK_UPLOAD_MAX_VIDEO_MB": "500", "BROOK_UPLOAD_MAX_PENDING": "0"}))
	if err != nil || !c.Uploads.S3.UseSSL || c.Uploads.S3.PathStyle || c.Uploads.S3.Region != "eu-west-1" ||
		c.Uploads.Limits.Video != 500<<20 || c.Uploads.Limits.MaxPending != -1 {
		t.Fatalf("S3: %+v %v", c.Uploads, err)
	}
	for _, bad := range []map[string]string{
		{"BROOK_S3_BUCKET": "b"},
		{"BROOK_PUBLIC_URL": "ftp://x"},
		{"BROOK_UPLOAD_MAX_IMAGE_MB": "0"},
		{"BROOK_S3_USE_SSL": "maybe"},
	} {
		if _, err := configFromEnv(env(bad)); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
	for addr, want := range map[string]string{"0.0.0.0:8080": "http://localhost:8080", "127.0.0.1:9": "http://127.0.0.1:9", "[::]:80": "http://localhost:80"} {
		a, _ := net.ResolveTCPAddr("tcp", addr)
		if got := publicURLOf(a); got != want {
			t.Errorf("publicURLOf(%s) = %s, want %s", addr, got, want)
		}
	}
	if c, err := configFromEnv(env(map[string]string{"BROOK_PUBLIC_URL": "https://chat.example.com/"})); err != nil || c.Uploads.PublicURL != "https://chat.example.com" {
		t.Fatalf("public URL: %q %v", c.Uploads.PublicURL, err)
	}
}

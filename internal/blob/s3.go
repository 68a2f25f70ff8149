package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Options say where an S3-compatible bucket is (BROOK_S3_*).
type S3Options struct {
	// Endpoint is the service's host[:port], like s3.amazonaws.com or
	// <account>.r2.cloudflarestorage.com.
	Endpoint  string
	Bucket    string
	AccessKey string
	SecretKey string
	// Region signs requests (us-east-1 when empty; R2 takes "auto"). It
	// is set so that signing never asks the service for the bucket's
	// location.
	Region string
	// UseSSL makes the URLs https.
	UseSSL bool
	// PathStyle puts the bucket in the path (endpoint/bucket/key), as
	// MinIO and SeaweedFS want, rather than in the host name.
	PathStyle bool
}

// S3 keeps objects in a bucket of an S3-compatible service. Clients
// upload and download with presigned URLs (signature version 4).
type S3 struct {
	c      *minio.Client
	bucket string
}

// NewS3 returns the store of opts' bucket. It makes no request.
func NewS3(opts S3Options) (*S3, error) {
	if opts.Endpoint == "" || opts.Bucket == "" {
		return nil, errors.New("blob: S3 needs an endpoint and a bucket")
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	lookup := minio.BucketLookupAuto
	if opts.PathStyle {
		lookup = minio.BucketLookupPath
	}
	c, err := minio.New(opts.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(opts.AccessKey, opts.SecretKey, ""),
		Secure: opts.UseSSL, Region: opts.Region, BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("blob: S3 client: %w", err)
	}
	return &S3{c: c, bucket: opts.Bucket}, nil
}

// Client is the minio-go client (tests create buckets with it).
func (s *S3) Client() *minio.Client { return s.c }

// SignPut implements Store. Content-Type and Content-Length are signed
// headers: the service refuses a request whose headers differ.
func (s *S3) SignPut(ctx context.Context, key string, size int64, contentType string, expires time.Time) (Request, error) {
	if !ValidKey(key) {
		return Request{}, errBadKey
	}
	h := http.Header{"Content-Type": {contentType}, "Content-Length": {strconv.FormatInt(size, 10)}}
	u, err := s.c.PresignHeader(ctx, http.MethodPut, s.bucket, key, ttl(expires), nil, h)
	if err != nil {
		return Request{}, fmt.Errorf("blob: presign PUT %s: %w", key, err)
	}
	return Request{Method: http.MethodPut, URL: u.String(), Headers: h}, nil
}

// SignGet implements Store: the response headers ride in the signed
// query (response-content-type, response-content-disposition).
func (s *S3) SignGet(ctx context.Context, key string, opts GetOptions, expires time.Time) (string, error) {
	if !ValidKey(key) {
		return "", errBadKey
	}
	q := url.Values{"response-content-disposition": {disposition(opts)}}
	if opts.ContentType != "" {
		q.Set("response-content-type", opts.ContentType)
	}
	u, err := s.c.PresignedGetObject(ctx, s.bucket, key, ttl(expires), q)
	if err != nil {
		return "", fmt.Errorf("blob: presign GET %s: %w", key, err)
	}
	return u.String(), nil
}

// ttl is how long from now until expires, in the whole seconds a
// presigned URL counts (at least one).
func ttl(expires time.Time) time.Duration {
	return max(time.Until(expires).Truncate(time.Second), time.Second)
}

func notExist(err error) bool {
	code := minio.ToErrorResponse(err).Code
	return code == "NoSuchKey" || code == "NotFound"
}

// Stat implements Store.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	oi, err := s.c.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if notExist(err) {
		return Info{}, ErrNotExist
	}
	if err != nil {
		return Info{}, fmt.Errorf("blob: stat %s: %w", key, err)
	}
	return Info{Size: oi.Size}, nil
}

// Open implements Store.
func (s *S3) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	o, err := s.c.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err == nil {
		// GetObject is lazy: Stat makes the request, so a missing object
		// is ErrNotExist here rather than at the first Read.
		if _, err = o.Stat(); err != nil {
			_ = o.Close()
		}
	}
	if notExist(err) {
		return nil, ErrNotExist
	}
	if err != nil {
		return nil, fmt.Errorf("blob: get %s: %w", key, err)
	}
	return o, nil
}

// Put implements Store.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if _, err := s.c.PutObject(ctx, s.bucket, key, r, size, minio.PutObjectOptions{ContentType: contentType}); err != nil {
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	return nil
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := s.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil && !notExist(err) {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	return nil
}

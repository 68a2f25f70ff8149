// Package thumbnail makes the small preview of an uploaded image: decoded
// with a guard against decompression bombs, turned upright by its EXIF
// orientation, scaled down to fit a box, and encoded as JPEG (or PNG
// when the image has transparency, which JPEG would paint black).
//
// The decoding and resampling come from github.com/disintegration/imaging
// (a widely used, dependency-light library whose AutoOrientation handles
// the eight EXIF orientations) and WebP decoding from golang.org/x/image.
package thumbnail

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // registers "gif" (imaging does too; Make must not depend on it)
	"image/jpeg"
	"image/png"

	"github.com/disintegration/imaging"
	_ "golang.org/x/image/webp" // registers the "webp" format with image.Decode
)

// ErrInvalid marks an image that can never be thumbnailed: corrupt,
// truncated, too large, or in a format outside the allowlist. A job that
// gets it ends without a thumbnail instead of retrying.
var ErrInvalid = errors.New("thumbnail: image cannot be thumbnailed")

// Options bound what Make accepts and produces.
type Options struct {
	// MaxWidth and MaxHeight are the box the thumbnail fits in, keeping
	// the aspect ratio; smaller images are never enlarged.
	MaxWidth, MaxHeight int
	// MaxPixels refuses images whose width×height is larger, read from the
	// header before any pixel is decoded: a 50,000×50,000 PNG compresses
	// to kilobytes and would decode to 10 GB.
	MaxPixels int64
	// JPEGQuality is the quality of JPEG thumbnails (1-100).
	JPEGQuality int
}

// DefaultOptions are the options Brook uses: a 400×400 box, images up to
// 50 megapixels, JPEG quality 80.
func DefaultOptions() Options {
	return Options{MaxWidth: 400, MaxHeight: 400, MaxPixels: 50_000_000, JPEGQuality: 80}
}

// Result is a thumbnail and what was learned making it.
type Result struct {
	// Data is the encoded thumbnail.
	Data []byte
	// ContentType is image/jpeg or image/png.
	ContentType string
	// Ext is the file extension matching ContentType (".jpg" or ".png").
	Ext string
	// Width and Height are the thumbnail's size in pixels.
	Width, Height int
	// SourceWidth and SourceHeight are the original's size as displayed,
	// after its EXIF orientation (a portrait photo stored landscape with
	// orientation 6 is reported as portrait).
	SourceWidth, SourceHeight int
}

// allowed is the allowlist of source formats, as image.DecodeConfig names
// them; imaging also registers BMP and TIFF, which uploads never accept.
var allowed = map[string]bool{"jpeg": true, "png": true, "gif": true, "webp": true}

// Make decodes data (a JPEG, PNG, GIF or WebP image) and returns its
// thumbnail. Errors wrapping ErrInvalid mean the image itself is bad.
func Make(data []byte, opts Options) (Result, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return Result{}, fmt.Errorf("%w: reading the header: %v", ErrInvalid, err)
	}
	if !allowed[format] {
		return Result{}, fmt.Errorf("%w: format %q not allowed", ErrInvalid, format)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return Result{}, fmt.Errorf("%w: empty image (%dx%d)", ErrInvalid, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); opts.MaxPixels > 0 && px > opts.MaxPixels {
		return Result{}, fmt.Errorf("%w: %dx%d is %d pixels, more than %d", ErrInvalid, cfg.Width, cfg.Height, px, opts.MaxPixels)
	}
	// Only JPEG carries EXIF orientation in practice; imaging reads it
	// while decoding and leaves images without the tag unchanged.
	img, err := imaging.Decode(bytes.NewReader(data), imaging.AutoOrientation(format == "jpeg"))
	if err != nil {
		return Result{}, fmt.Errorf("%w: decoding %s: %v", ErrInvalid, format, err)
	}
	b := img.Bounds()
	res := Result{SourceWidth: b.Dx(), SourceHeight: b.Dy()}
	// Lanczos gives the sharpest downscale; on a 400-pixel box its cost is
	// dominated by decoding anyway.
	thumb := imaging.Fit(img, opts.MaxWidth, opts.MaxHeight, imaging.Lanczos)
	res.Width, res.Height = thumb.Bounds().Dx(), thumb.Bounds().Dy()
	if res.Width == 0 || res.Height == 0 {
		return Result{}, fmt.Errorf("%w: nothing left after scaling", ErrInvalid)
	}

	var buf bytes.Buffer
	if thumb.Opaque() {
		q := opts.JPEGQuality
		if q <= 0 || q > 100 {
			q = 80
		}
		err = jpeg.Encode(&buf, thumb, &jpeg.Options{Quality: q})
		res.ContentType, res.Ext = "image/jpeg", ".jpg"
	} else {
		err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, thumb)
		res.ContentType, res.Ext = "image/png", ".png"
	}
	if err != nil {
		// Encoding an in-memory NRGBA cannot fail on bad input; this is
		// a bug or out of memory, worth a retry rather than ErrInvalid.
		return Result{}, fmt.Errorf("thumbnail: encoding: %w", err)
	}
	res.Data = buf.Bytes()
	return res, nil
}

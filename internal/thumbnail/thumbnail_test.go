package thumbnail

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"testing"
)

// halves is a w×h image, left half red and right half blue, opaque.
func halves(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.NRGBA{R: 255, A: 255}
			if x >= w/2 {
				c = color.NRGBA{B: 255, A: 255}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodeJPEG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withOrientation inserts an EXIF APP1 segment carrying the orientation
// tag right after the JPEG's SOI marker, as a camera writes it.
func withOrientation(t *testing.T, jpg []byte, orientation uint16) []byte {
	t.Helper()
	if jpg[0] != 0xFF || jpg[1] != 0xD8 {
		t.Fatal("not a JPEG")
	}
	var tiff bytes.Buffer
	tiff.WriteString("MM\x00\x2A")                             // big-endian TIFF header
	binary.Write(&tiff, binary.BigEndian, uint32(8))           // offset of IFD0
	binary.Write(&tiff, binary.BigEndian, uint16(1))           // one entry
	binary.Write(&tiff, binary.BigEndian, uint16(0x0112))      // Orientation
	binary.Write(&tiff, binary.BigEndian, uint16(3))           // SHORT
	binary.Write(&tiff, binary.BigEndian, uint32(1))           // count
	binary.Write(&tiff, binary.BigEndian, orientation)         // value, left-justified
	binary.Write(&tiff, binary.BigEndian, uint16(0))           // padding
	binary.Write(&tiff, binary.BigEndian, uint32(0))           // no next IFD
	payload := append([]byte("Exif\x00\x00"), tiff.Bytes()...) // APP1 body
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

func decode(t *testing.T, r Result) image.Image {
	t.Helper()
	img, format, err := image.Decode(bytes.NewReader(r.Data))
	if err != nil {
		t.Fatalf("thumbnail does not decode: %v", err)
	}
	want := map[string]string{"image/jpeg": "jpeg", "image/png": "png"}[r.ContentType]
	if format != want {
		t.Fatalf("thumbnail is %s, ContentType says %s", format, r.ContentType)
	}
	if b := img.Bounds(); b.Dx() != r.Width || b.Dy() != r.Height {
		t.Fatalf("thumbnail is %dx%d, Result says %dx%d", b.Dx(), b.Dy(), r.Width, r.Height)
	}
	return img
}

func near(c color.Color, r, g, b uint8) bool {
	cr, cg, cb, _ := c.RGBA()
	d := func(a uint32, b uint8) bool { x := int(a>>8) - int(b); return x > -60 && x < 60 }
	return d(cr, r) && d(cg, g) && d(cb, b)
}

func TestMakeFitsTheBoxKeepingAspect(t *testing.T) {
	cases := []struct {
		name         string
		w, h         int
		tw, th       int
		jpegOriginal bool
	}{
		{"wide", 1600, 400, 400, 100, false},
		{"tall", 300, 1200, 100, 400, true},
		{"square", 800, 800, 400, 400, true},
		{"tiny is not enlarged", 12, 7, 12, 7, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := encodePNG(t, halves(c.w, c.h))
			if c.jpegOriginal {
				data = encodeJPEG(t, halves(c.w, c.h))
			}
			r, err := Make(data, DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			if r.Width != c.tw || r.Height != c.th || r.SourceWidth != c.w || r.SourceHeight != c.h {
				t.Fatalf("got %dx%d from %dx%d, want %dx%d from %dx%d", r.Width, r.Height, r.SourceWidth, r.SourceHeight, c.tw, c.th, c.w, c.h)
			}
			if r.ContentType != "image/jpeg" || r.Ext != ".jpg" {
				t.Fatalf("an opaque image gives %s %s, want a JPEG", r.ContentType, r.Ext)
			}
			img := decode(t, r)
			if !near(img.At(0, r.Height/2), 255, 0, 0) || !near(img.At(r.Width-1, r.Height/2), 0, 0, 255) {
				t.Fatalf("colours moved: left %v right %v", img.At(0, r.Height/2), img.At(r.Width-1, r.Height/2))
			}
		})
	}
}

func TestMakeKeepsTransparencyAsPNG(t *testing.T) {
	img := halves(800, 200)
	for y := range 200 { // the top half see-through
		for x := range 100 {
			img.SetNRGBA(x, y, color.NRGBA{})
		}
	}
	r, err := Make(encodePNG(t, img), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if r.ContentType != "image/png" || r.Ext != ".png" || r.Width != 400 || r.Height != 100 {
		t.Fatalf("got %s %s %dx%d, want a 400x100 PNG", r.ContentType, r.Ext, r.Width, r.Height)
	}
	if _, _, _, a := decode(t, r).At(0, 0).RGBA(); a != 0 {
		t.Fatalf("the transparent corner has alpha %d", a)
	}
}

func TestMakeGIFAndWebP(t *testing.T) {
	pal := image.NewPaletted(image.Rect(0, 0, 600, 300), color.Palette{color.Black, color.White})
	var buf bytes.Buffer
	if err := gif.Encode(&buf, pal, nil); err != nil {
		t.Fatal(err)
	}
	r, err := Make(buf.Bytes(), DefaultOptions())
	if err != nil || r.Width != 400 || r.Height != 200 || r.ContentType != "image/jpeg" {
		t.Fatalf("gif: %+v %v", r.ContentType, err)
	}
	decode(t, r)

	// A lossy WebP from golang.org/x/image's test data (BSD, the Go
	// Authors): Go has no WebP encoder to make one in the test.
	webp, err := os.ReadFile("testdata/blue-purple-pink.lossy.webp")
	if err != nil {
		t.Fatal(err)
	}
	r, err = Make(webp, Options{MaxWidth: 100, MaxHeight: 100, MaxPixels: 50_000_000})
	if err != nil {
		t.Fatal(err)
	}
	if r.SourceWidth == 0 || r.Width > 100 || r.Height > 100 || (r.Width != 100 && r.Height != 100) {
		t.Fatalf("webp: %dx%d from %dx%d", r.Width, r.Height, r.SourceWidth, r.SourceHeight)
	}
	decode(t, r)
}

func TestMakeHonoursEXIFOrientation(t *testing.T) {
	// Stored 800x400 (red left, blue right) with orientation 6: shown
	// rotated 90° clockwise, so 400x800 with red on top.
	data := withOrientation(t, encodeJPEG(t, halves(800, 400)), 6)
	r, err := Make(data, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if r.SourceWidth != 400 || r.SourceHeight != 800 || r.Width != 200 || r.Height != 400 {
		t.Fatalf("got %dx%d from %dx%d, want 200x400 from 400x800", r.Width, r.Height, r.SourceWidth, r.SourceHeight)
	}
	img := decode(t, r)
	if !near(img.At(100, 5), 255, 0, 0) || !near(img.At(100, 394), 0, 0, 255) {
		t.Fatalf("not turned upright: top %v bottom %v", img.At(100, 5), img.At(100, 394))
	}
}

func TestMakeRefusesBadImages(t *testing.T) {
	good := encodePNG(t, halves(64, 64))
	// A 20000x20000 PNG: 400 megapixels that compress to a few hundred
	// kilobytes. The guard must refuse it from the header alone.
	bomb := encodePNG(t, image.NewGray(image.Rect(0, 0, 20000, 20000)))
	var bmp bytes.Buffer
	bmp.WriteString("BM") // a BMP header: imaging decodes BMP, uploads do not allow it
	bmp.Write(make([]byte, 64))

	cases := map[string][]byte{
		"empty":      nil,
		"not image":  []byte("PK\x03\x04 this is a zip file, not a picture"),
		"truncated":  good[:len(good)/2],
		"corrupt":    append(append([]byte{}, good[:60]...), bytes.Repeat([]byte{0xAB}, 300)...),
		"bomb":       bomb,
		"bmp header": bmp.Bytes(),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Make(data, DefaultOptions())
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}

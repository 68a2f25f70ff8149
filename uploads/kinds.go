package uploads

import (
	"mime"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gabriel-vasile/mimetype"

	"github.com/brookhq/brook/store"
)

// Limits are the largest file of each kind, in bytes, and how many
// uploads a user may have pending (created, not completed) within an
// hour. Zero values take the defaults.
type Limits struct {
	Image, Video, Audio, File int
	// MaxPending caps a user's pending uploads of the last hour (-1: no cap).
	MaxPending int
}

// Default limits.
const (
	DefaultImageBytes = 10 << 20
	DefaultVideoBytes = 100 << 20
	DefaultAudioBytes = 20 << 20
	DefaultFileBytes  = 25 << 20
	DefaultMaxPending = 50
)

func (l Limits) withDefaults() Limits {
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&l.Image, DefaultImageBytes)
	set(&l.Video, DefaultVideoBytes)
	set(&l.Audio, DefaultAudioBytes)
	set(&l.File, DefaultFileBytes)
	set(&l.MaxPending, DefaultMaxPending)
	return l
}

func (l Limits) of(kind store.AttachmentType) int {
	switch kind {
	case store.AttachmentImage:
		return l.Image
	case store.AttachmentVideo:
		return l.Video
	case store.AttachmentAudio:
		return l.Audio
	}
	return l.File
}

// kinds are the content types a client may claim, by kind, in the order
// they are listed in errors.
var kinds = []struct {
	kind  store.AttachmentType
	types []string
}{
	{store.AttachmentImage, []string{"image/jpeg", "image/png", "image/gif", "image/webp"}},
	{store.AttachmentVideo, []string{"video/mp4", "video/webm", "video/quicktime"}},
	{store.AttachmentAudio, []string{"audio/mpeg", "audio/ogg", "audio/wav", "audio/x-wav", "audio/mp4", "audio/aac", "audio/x-m4a", "audio/webm"}},
	{store.AttachmentFile, []string{"application/pdf", "text/plain", "text/csv", "application/zip", "application/json",
		"application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
		"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
		"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
		"application/vnd.openxmlformats-officedocument.presentationml.presentation",
		"application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
		"application/vnd.oasis.opendocument.presentation", "application/rtf"}},
}

// sniffedAlso are content types the sniffer reports for files that are
// rightly of a kind though not on its claim list: an .m4a is an MP4
// container, a CSV or JSON file reads as text, Office files are zips when
// the sniffer cannot see which, old Office files are OLE storage.
var sniffedAlso = map[store.AttachmentType][]string{
	store.AttachmentAudio: {"video/mp4", "video/webm", "audio/x-m4a", "audio/mp4"},
	store.AttachmentFile:  {"text/plain", "application/x-ole-storage", "text/rtf"},
}

// kindOf returns the kind of a claimed content type (its parameters
// ignored), and the type in its plain form.
func kindOf(contentType string) (store.AttachmentType, string, bool) {
	t, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", "", false
	}
	for _, k := range kinds {
		if slices.Contains(k.types, t) {
			return k.kind, t, true
		}
	}
	return "", t, false
}

// allowedTypes lists every type a client may claim, for errors.
func allowedTypes() string {
	var all []string
	for _, k := range kinds {
		all = append(all, k.types...)
	}
	return strings.Join(all, ", ")
}

// sniffOK reports whether the type found in a file's bytes may be a file
// of kind.
func sniffOK(kind store.AttachmentType, m *mimetype.MIME) bool {
	for _, k := range kinds {
		if k.kind != kind {
			continue
		}
		for _, t := range append(slices.Clone(k.types), sniffedAlso[kind]...) {
			if m.Is(t) {
				return true
			}
		}
	}
	return false
}

// maxFilename bounds a file's name, in bytes (what file systems allow).
const maxFilename = 255

// checkFilename refuses names a browser or a file system would take
// badly: empty, too long, a path, control characters.
func checkFilename(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return store.Invalid("filename", "must not be empty")
	case len(name) > maxFilename:
		return store.Invalid("filename", "is %d bytes long; the limit is %d", len(name), maxFilename)
	case !utf8.ValidString(name):
		return store.Invalid("filename", "must be valid UTF-8")
	case strings.ContainsAny(name, `/\`):
		return store.Invalid("filename", "must be a file's name, not a path: no / or \\")
	case name == "." || name == "..":
		return store.Invalid("filename", "must be a file's name")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return store.Invalid("filename", "must not contain control characters")
	}
	return nil
}

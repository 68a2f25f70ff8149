package store

import (
	"io"
	"net/url"
	"strconv"

	"github.com/google/uuid"
)

// AttachmentType says what an attachment is, and so how a client shows it.
type AttachmentType string

// Attachment types.
const (
	AttachmentImage AttachmentType = "IMAGE"
	AttachmentVideo AttachmentType = "VIDEO"
	AttachmentAudio AttachmentType = "AUDIO"
	AttachmentFile  AttachmentType = "FILE"
	// AttachmentLink is a link preview: a page's OpenGraph title,
	// description and image.
	AttachmentLink AttachmentType = "LINK"
)

// MarshalGQL writes the type as its GraphQL enum value.
func (t AttachmentType) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(t))) }

// UnmarshalGQL reads a GraphQL enum value.
func (t *AttachmentType) UnmarshalGQL(v any) error {
	return UnmarshalEnum(t, v, "type", "attachment type",
		AttachmentImage, AttachmentVideo, AttachmentAudio, AttachmentFile, AttachmentLink)
}

// Attachment is one element of a message's or an activity's attachments
// column. A file uploaded to Brook is stored by its storage keys (its URLs
// are signed when read); an external one by its URL.
type Attachment struct {
	Type AttachmentType `json:"type"`
	// UploadID is the upload the file came from; nil for external URLs and
	// link previews.
	UploadID *uuid.UUID `json:"uploadId,omitempty"`
	// Key and ThumbKey are the storage keys of an uploaded file and of its
	// thumbnail (empty until the thumbnail is made).
	Key      string `json:"key,omitempty"`
	ThumbKey string `json:"thumbKey,omitempty"`
	// Filename is an uploaded file's name, given back when it is
	// downloaded (Content-Disposition).
	Filename string `json:"filename,omitempty"`
	// URL is an external file's address or a link preview's page.
	URL string `json:"url,omitempty"`
	// ThumbURL is an external thumbnail's address.
	ThumbURL string `json:"thumbUrl,omitempty"`
	// The rest are nil when unknown (GraphQL null).
	MimeType    *string `json:"mimeType,omitempty"`
	Size        *int    `json:"size,omitempty"`
	Width       *int    `json:"width,omitempty"`
	Height      *int    `json:"height,omitempty"`
	Title       *string `json:"title,omitempty"`
	Description *string `json:"description,omitempty"`
	// ImageURL is a link preview's image (og:image).
	ImageURL *string `json:"imageUrl,omitempty"`
}

// AttachmentInput is an attachment as a client sends it: a completed
// upload of its own, or an external URL.
type AttachmentInput struct {
	UploadID *string
	URL      *string
	Type     *AttachmentType
	Title    *string
}

// MaxAttachments is how many attachments one message or activity carries
// at most (link previews included).
const MaxAttachments = 10

// maxAttachmentURL bounds an external attachment's URL.
const maxAttachmentURL = 2048

// ExternalAttachment checks an external-URL attachment of a client (field
// names the input for errors) and returns it as stored.
func ExternalAttachment(field string, in AttachmentInput) (Attachment, error) {
	if in.URL == nil {
		return Attachment{}, Invalid(field, "needs an uploadId or a url")
	}
	if len(*in.URL) > maxAttachmentURL {
		return Attachment{}, Invalid(field+".url", "must be at most %d characters", maxAttachmentURL)
	}
	u, err := url.Parse(*in.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Attachment{}, Invalid(field+".url", "must be an absolute http or https URL")
	}
	a := Attachment{Type: AttachmentFile, URL: u.String()}
	if in.Type != nil {
		if *in.Type == AttachmentLink {
			return Attachment{}, Invalid(field+".type", "LINK attachments are made by Brook from the text's URLs")
		}
		a.Type = *in.Type
	}
	if in.Title != nil {
		if err := CheckText(field+".title", *in.Title, 300); err != nil {
			return Attachment{}, err
		}
		a.Title = in.Title
	}
	return a, nil
}

// CheckAttachments checks a client's attachments and returns them as
// stored (nil for none): external URLs whole, uploads as placeholders
// (UploadID and Title) that the sending transaction fills in when it
// attaches them (attachUploads). It costs no statement.
func CheckAttachments(field string, in []AttachmentInput) ([]Attachment, error) {
	if len(in) > MaxAttachments {
		return nil, Invalid(field, "must be at most %d attachments", MaxAttachments)
	}
	var out []Attachment
	seen := map[uuid.UUID]bool{}
	for i, a := range in {
		f := field + "." + strconv.Itoa(i)
		if a.UploadID == nil {
			at, err := ExternalAttachment(f, a)
			if err != nil {
				return nil, err
			}
			out = append(out, at)
			continue
		}
		if a.URL != nil {
			return nil, Invalid(f, "takes an uploadId or a url, not both")
		}
		id, err := ParseID(f+".uploadId", *a.UploadID)
		if err != nil {
			return nil, err
		}
		if seen[id] {
			return nil, Invalid(f+".uploadId", "upload %s is attached twice", id)
		}
		seen[id] = true
		at := Attachment{Type: AttachmentFile, UploadID: &id}
		if a.Title != nil {
			if err := CheckText(f+".title", *a.Title, 300); err != nil {
				return nil, err
			}
			at.Title = a.Title
		}
		out = append(out, at)
	}
	return out, nil
}

// HasUploads reports whether stored attachments name uploads still to be
// attached.
func HasUploads(stored []Attachment) bool {
	for _, a := range stored {
		if a.UploadID != nil && a.Key == "" {
			return true
		}
	}
	return false
}

// attachmentsValue is the column's value: NULL for none, so that rows
// without attachments stay as small as before.
func attachmentsValue(a []Attachment) any {
	if len(a) == 0 {
		return nil
	}
	return a
}

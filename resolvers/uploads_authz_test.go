package resolvers_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// The rows of the authorization matrix for uploads (issue 21): every user
// uploads files of their own; only the owner completes an upload, not
// even an admin (reading a file follows the message or activity it is
// attached to, not the upload).
func init() {
	matrix = append(matrix,
		policy{op: "mutation.createUpload", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation { createUpload(filename: "a.txt", contentType: "text/plain", size: 5) { uploadUrl } }`, nil
		}},
		policy{op: "mutation.completeUpload", want: participantOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($id: ID!) { completeUpload(id: $id) { id } }`, brooktest.Vars{"id": f.upload(t)}
		}},
	)
}

// upload creates an upload of the owner's, with its bytes in storage.
func (f *fixture) upload(t *testing.T) string {
	t.Helper()
	var out struct {
		CreateUpload struct {
			Upload    struct{ ID string }
			UploadURL string
			Method    string
		}
	}
	f.node.Must(t, f.token(t, owner), `mutation { createUpload(filename: "a.txt", contentType: "text/plain", size: 5) {
		upload { id } uploadUrl method } }`, nil, &out)
	req, err := http.NewRequest(out.CreateUpload.Method, out.CreateUpload.UploadURL, bytes.NewReader([]byte("hello")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload the bytes: %d", resp.StatusCode)
	}
	return out.CreateUpload.Upload.ID
}

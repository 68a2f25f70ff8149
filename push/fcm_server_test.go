package push_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/brookhq/brook/internal/pushsend"
)

// fcm is a local HTTPS server playing FCM HTTP v1 and Google's token
// endpoint for the push tests (internal/pushsend's tests check the wire
// format in detail): it issues one access token, refuses sends without
// it, and answers each device token as told.
type fcm struct {
	t   *testing.T
	srv *httptest.Server
	key *rsa.PrivateKey

	mu sync.Mutex
	// got holds the messages each device token was sent, in order.
	got map[string][]fcmMsg
	// tries counts the send requests per device token (refusals too).
	tries map[string]int
	// gone tokens answer UNREGISTERED; failing ones 500 that many times.
	gone    map[string]bool
	failing map[string]int
}

// fcmMsg is the part of a sent message the tests look at.
type fcmMsg struct {
	Title, Body string
	Data        map[string]string
	Priority    string
}

func newFCM(t *testing.T) *fcm {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &fcm{t: t, key: key, got: map[string][]fcmMsg{}, tries: map[string]int{}, gone: map[string]bool{}, failing: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || strings.Count(r.FormValue("assertion"), ".") != 2 {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"push-test-token","token_type":"Bearer","expires_in":3600}`)
	})
	mux.HandleFunc("POST /v1/projects/push-test/messages:send", f.send)
	f.srv = httptest.NewTLSServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fcm) send(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer push-test-token" {
		http.Error(w, `{"error":{"code":401,"status":"UNAUTHENTICATED"}}`, http.StatusUnauthorized)
		return
	}
	var body struct {
		Message struct {
			Token        string
			Notification struct{ Title, Body string }
			Data         map[string]string
			Android      struct{ Priority string }
		}
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		f.t.Errorf("fcm body: %v", err)
	}
	m := body.Message
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries[m.Token]++
	switch {
	case f.gone[m.Token]:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`)
		return
	case f.failing[m.Token] > 0:
		f.failing[m.Token]--
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error":{"code":500,"status":"INTERNAL","message":"try again"}}`)
		return
	}
	f.got[m.Token] = append(f.got[m.Token], fcmMsg{Title: m.Notification.Title, Body: m.Notification.Body, Data: m.Data, Priority: m.Android.Priority})
	fmt.Fprint(w, `{"name":"projects/push-test/messages/1"}`)
}

// sender is a pushsend FCM sender pointed at this server.
func (f *fcm) sender() pushsend.Sender {
	der, _ := x509.MarshalPKCS8PrivateKey(f.key)
	creds, _ := json.Marshal(map[string]string{"type": "service_account", "project_id": "push-test", "private_key_id": "k",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "brook@push-test.iam.gserviceaccount.com", "token_uri": f.srv.URL + "/token"})
	pool := x509.NewCertPool()
	pool.AddCert(f.srv.Certificate())
	s, err := pushsend.NewFCM(pushsend.FCMConfig{Credentials: creds, Endpoint: f.srv.URL, RootCAs: pool})
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// sent returns what token was sent so far.
func (f *fcm) sent(token string) []fcmMsg {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fcmMsg(nil), f.got[token]...)
}

func (f *fcm) attempts(token string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tries[token]
}

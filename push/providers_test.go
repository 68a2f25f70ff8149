package push_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/internal/pushsend"
)

// recorder is a local TLS server standing in for APNs or a browser's push
// service: it records what reaches each path and answers 410 for the
// paths in gone. The senders' own tests check each wire format in full;
// this one checks that the push service routes to them.
type recorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  map[string][]http.Header
	gone map[string]bool
}

func newRecorder(t *testing.T, http2 bool, ok int) *recorder {
	r := &recorder{got: map[string][]http.Header{}, gone: map[string]bool{}}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.got[req.URL.Path] = append(r.got[req.URL.Path], req.Header.Clone())
		gone := r.gone[req.URL.Path]
		r.mu.Unlock()
		if gone {
			w.WriteHeader(http.StatusGone)
			_, _ = io.WriteString(w, `{"reason":"Unregistered"}`)
			return
		}
		w.WriteHeader(ok)
	}))
	r.srv.EnableHTTP2 = http2
	r.srv.StartTLS()
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) hits(path string) []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[path]
}

func (r *recorder) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(r.srv.Certificate())
	return p
}

func apnsSender(t *testing.T, r *recorder) pushsend.Sender {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := pushsend.NewAPNs(pushsend.APNsConfig{Key: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		KeyID: "ABC123DEFG", TeamID: "TEAM123456", Topic: "dev.brook.test", Endpoint: r.srv.URL, RootCAs: r.pool()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func webPushSender(t *testing.T, r *recorder) pushsend.Sender {
	pub, priv, err := pushsend.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	s, err := pushsend.NewWebPush(pushsend.WebPushConfig{PublicKey: pub, PrivateKey: priv, Subject: "mailto:ops@brook.test",
		RootCAs: r.pool(), AllowPrivateEndpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// subscription is a browser's PushSubscription JSON for an endpoint of r.
func subscription(t *testing.T, r *recorder, path string) string {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	b, _ := json.Marshal(map[string]any{"endpoint": r.srv.URL + path, "keys": map[string]string{
		"p256dh": base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()), "auth": base64.RawURLEncoding.EncodeToString(auth)}})
	return string(b)
}

// APNs and Web Push devices get the same pushes as FCM ones, through the
// same rules: an offline member's devices of every provider, an online
// member's none, and a token the provider reports gone is removed.
func TestAPNsAndWebPushDevices(t *testing.T) {
	apns := newRecorder(t, true, http.StatusOK)
	web := newRecorder(t, false, http.StatusCreated)
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) {
		o.Push.Senders = map[pushsend.Provider]pushsend.Sender{pushsend.APNS: apnsSender(t, apns), pushsend.WebPush: webPushSender(t, web)}
		o.Push.Delay = 300 * time.Millisecond
	}})
	tag := brooktest.Tag()
	alice, bob, carol := "pp-alice-"+tag, "pp-bob-"+tag, "pp-carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	var ch struct{ CreateChannel struct{ ID string } }
	n.Must(t, env.Token(t, alice), `mutation($m: [ID!]) { createChannel(input: {type: "messaging", name: "pp", members: $m}) { id } }`,
		brooktest.Vars{"m": []string{bob, carol}}, &ch)
	add := func(user, provider, token string) {
		t.Helper()
		n.Must(t, env.Token(t, user), `mutation($p: PushProvider!, $t: String!) { addDevice(provider: $p, token: $t) { id } }`,
			brooktest.Vars{"p": provider, "t": token}, nil)
	}
	hexToken := func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
	bobPhone, bobOld, carolPhone := hexToken(), hexToken(), hexToken()
	add(bob, "APNS", bobPhone)
	add(bob, "APNS", bobOld)
	add(bob, "WEBPUSH", subscription(t, web, "/push/bob-browser"))
	oldBrowser := subscription(t, web, "/push/bob-old-browser")
	add(bob, "WEBPUSH", oldBrowser)
	web.gone["/push/bob-old-browser"] = true // the browser unsubscribed: its push service answers 410
	add(carol, "APNS", carolPhone)
	apns.gone["/3/device/"+bobOld] = true
	ws := n.MustDial(t, env.Token(t, carol)) // carol is online
	defer ws.Close()

	n.Must(t, env.Token(t, alice), `mutation($c: ID!) { sendMessage(channel: $c, input: {text: "hello"}) { id } }`,
		brooktest.Vars{"c": ch.CreateChannel.ID}, nil)
	brooktest.Eventually(t, "pushes settled", func() bool {
		return n.Count(t, `SELECT count(*) FROM push_pending`) == 0 &&
			n.Count(t, `SELECT count(*) FROM jobs WHERE kind LIKE 'push.%' OR kind = 'chat.message'`) == 0
	})

	if h := apns.hits("/3/device/" + bobPhone); len(h) != 1 || h[0].Get("apns-topic") != "dev.brook.test" ||
		!strings.HasPrefix(h[0].Get("authorization"), "bearer ") {
		t.Errorf("bob's iPhone: %d pushes %v, want 1 on topic dev.brook.test", len(h), h)
	}
	if h := web.hits("/push/bob-browser"); len(h) != 1 || h[0].Get("Content-Encoding") != "aes128gcm" ||
		!strings.HasPrefix(h[0].Get("Authorization"), "vapid t=") {
		t.Errorf("bob's browser: %d pushes %v, want 1 encrypted with VAPID", len(h), h)
	}
	if h := apns.hits("/3/device/" + carolPhone); len(h) != 0 {
		t.Errorf("carol (online) got %d pushes, want 0", len(h))
	}
	if c := n.Count(t, `SELECT count(*) FROM push_devices WHERE token = $1`, bobOld); c != 0 {
		t.Errorf("the token APNs answered 410 for is still a device")
	}
	if h := web.hits("/push/bob-old-browser"); len(h) != 1 {
		t.Errorf("bob's old browser was tried %d times, want 1", len(h))
	}
	if c := n.Count(t, `SELECT count(*) FROM push_devices WHERE user_id = $1 AND provider = 'WEBPUSH'`, bob); c != 1 {
		t.Errorf("bob has %d Web Push devices, want 1: the subscription its service answered 410 for is removed", c)
	}
	if c := n.Count(t, `SELECT count(*) FROM push_devices WHERE user_id = $1`, bob); c != 2 {
		t.Errorf("bob has %d devices, want 2", c)
	}
}

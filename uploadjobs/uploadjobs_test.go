package uploadjobs_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/blob"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/uploadjobs"
	"github.com/brookhq/brook/workers"
)

var env *brooktest.Env

func TestMain(m *testing.M) { brooktest.Main(m, &env) }

// gate is the real local-disk store with a hook on Put and Open, so a test
// can hold a thumbnail job at a chosen step (or fail one read) while it
// stages a race. The bytes still go to disk.
type gate struct {
	*blob.Local
	mu      sync.Mutex
	onPut   func()
	failOne error
}

func (g *gate) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	g.mu.Lock()
	hook := g.onPut
	g.mu.Unlock()
	if hook != nil {
		hook()
	}
	return g.Local.Put(ctx, key, r, size, contentType)
}

func (g *gate) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	g.mu.Lock()
	err := g.failOne
	g.failOne = nil
	g.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return g.Local.Open(ctx, key)
}

type fixture struct {
	n          *brooktest.Node
	svc        *uploadjobs.Service
	runner     *workers.Runner
	blob       *gate
	alice, cid string
}

// setup starts a node whose jobs only the test runs, a local store in a
// temporary directory, and a channel of alice and bob.
func setup(t *testing.T, adjust ...func(*uploadjobs.Options)) *fixture {
	t.Helper()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	local, err := blob.NewLocal(t.TempDir(), []byte("uploadjobs-test-secret-0123456789abcdef"), n.URL)
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{Local: local}
	o := uploadjobs.Options{Store: n.Store, Blob: g, Chat: n.Chat, Feeds: n.Feeds, SweepBatch: 2}
	for _, a := range adjust {
		a(&o)
	}
	svc := uploadjobs.New(o)
	r := workers.New(n.Store, n.Bus, workers.Options{Concurrency: 1, MaxAttempts: 3})
	svc.RegisterJobs(r)
	tag := brooktest.Tag()
	f := &fixture{n: n, svc: svc, runner: r, blob: g, alice: "th-alice-" + tag}
	bob := "th-bob-" + tag
	env.AddUsers(t, n, f.alice, bob)
	var out struct{ CreateChannel struct{ ID string } }
	n.Must(t, env.Token(t, f.alice), `mutation($in: ChannelInput!) { createChannel(input: $in) { id } }`,
		brooktest.Vars{"in": map[string]any{"type": "messaging", "id": "th-" + tag, "members": []string{bob}}}, &out)
	f.cid = out.CreateChannel.ID
	return f
}

// pngOf is a w×h opaque PNG.
func pngOf(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{R: uint8(x), G: uint8(y), B: 200, A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readyImage stores data as alice's completed image upload (as
// completeUpload leaves it: READY, with its thumbnail job) and returns it.
func (f *fixture) readyImage(t *testing.T, data []byte) *store.Upload {
	t.Helper()
	ctx := context.Background()
	id := store.NewID()
	u, err := f.n.Store.CreateUpload(ctx, &store.Upload{ID: id, OwnerID: f.alice, Filename: "photo.png", ContentType: "image/png",
		Size: len(data), Kind: store.AttachmentImage, Key: "up/" + id.String()}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.blob.Local.Put(ctx, u.Key, bytes.NewReader(data), int64(len(data)), "image/png"); err != nil {
		t.Fatal(err)
	}
	err = f.n.Store.InTx(ctx, func(tx *store.Store) error {
		u, err = tx.MarkUploadReady(ctx, id, "image/png", nil, nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// send sends alice's message with the upload attached, and returns its id.
func (f *fixture) send(t *testing.T, u *store.Upload) uuid.UUID {
	t.Helper()
	var out struct{ SendMessage struct{ ID string } }
	f.n.Must(t, env.Token(t, f.alice), `mutation($c: ID!, $in: MessageInput!) { sendMessage(channel: $c, input: $in) { id } }`,
		brooktest.Vars{"c": f.cid, "in": map[string]any{"text": "look", "attachments": []any{map[string]any{"uploadId": u.ID.String()}}}}, &out)
	return uuid.MustParse(out.SendMessage.ID)
}

// runThumbnails runs the ready thumbnail jobs.
func (f *fixture) runThumbnails(t *testing.T) {
	t.Helper()
	if _, err := f.runner.RunOnce(context.Background(), []string{store.UploadThumbnailKind}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) jobs(t *testing.T, u *store.Upload) int {
	return f.n.Count(t, `SELECT count(*) FROM jobs WHERE kind = $1 AND payload->>'uploadId' = $2`, store.UploadThumbnailKind, u.ID.String())
}

// thumbOf checks the upload's and the message's thumbnail: the same key,
// an object that is a JPEG within 400x400, and the upright size.
func (f *fixture) thumbOf(t *testing.T, u *store.Upload, msg uuid.UUID, w, h, tw, th int) {
	t.Helper()
	ctx := context.Background()
	got, err := f.n.Store.Upload(ctx, u.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	want := u.Key + ".thumb.jpg"
	if got.ThumbKey == nil || *got.ThumbKey != want || *got.Width != w || *got.Height != h {
		t.Fatalf("upload: thumb %v %v×%v, want %s %d×%d", got.ThumbKey, got.Width, got.Height, want, w, h)
	}
	m, err := f.n.Store.Message(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Attachments) != 1 || m.Attachments[0].ThumbKey != want || *m.Attachments[0].Width != w {
		t.Fatalf("message attachments: %+v, want thumbKey %s", m.Attachments, want)
	}
	r, err := f.blob.Local.Open(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cfg, format, err := image.DecodeConfig(r)
	if err != nil || format != "jpeg" || cfg.Width != tw || cfg.Height != th {
		t.Fatalf("thumbnail object: %s %dx%d %v, want jpeg %dx%d", format, cfg.Width, cfg.Height, err, tw, th)
	}
}

// An image attached before its thumbnail is made: the job writes the
// thumbnail into the message, and the room hears message.updated.
func TestThumbnailOfAnAttachedImage(t *testing.T) {
	f := setup(t)
	u := f.readyImage(t, pngOf(t, 1000, 500))
	msg := f.send(t, u)

	ws := f.n.MustDial(t, env.Token(t, f.alice))
	sub := ws.Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type message { id attachments { type width height } } } }`, brooktest.Vars{"c": f.cid})
	time.Sleep(150 * time.Millisecond) // the subscription is live

	f.runThumbnails(t)
	f.thumbOf(t, u, msg, 1000, 500, 400, 200)
	if n := f.jobs(t, u); n != 0 {
		t.Fatalf("%d thumbnail jobs left", n)
	}
	var ev struct {
		ChannelEvents struct {
			Type    string
			Message struct {
				ID          string
				Attachments []struct {
					Type          string
					Width, Height int
				}
			}
		}
	}
	sub.NextData(&ev)
	if e := ev.ChannelEvents; e.Type != "message.updated" || e.Message.ID != msg.String() || len(e.Message.Attachments) != 1 ||
		e.Message.Attachments[0].Type != "IMAGE" || e.Message.Attachments[0].Width != 1000 {
		t.Fatalf("event: %+v", e)
	}

	// Run again (a retry after a crash past the commit): nothing changes,
	// nothing is published.
	if _, err := f.n.Store.EnqueueJob(context.Background(), store.UploadThumbnailKind, store.UploadThumbnailJob{UploadID: u.ID}); err != nil {
		t.Fatal(err)
	}
	f.runThumbnails(t)
	f.thumbOf(t, u, msg, 1000, 500, 400, 200)
	sub.None(300 * time.Millisecond)
}

// A thumbnail made before the attach: the attach copies it.
func TestThumbnailBeforeTheAttach(t *testing.T) {
	f := setup(t)
	u := f.readyImage(t, pngOf(t, 300, 900))
	f.runThumbnails(t)
	msg := f.send(t, u)
	f.thumbOf(t, u, msg, 300, 900, 133, 400)
}

// The attach commits while the job is making the thumbnail (after it read
// the row, before it locks it): the job sees the attach and updates the
// message.
func TestThumbnailRaceAttachCommitsFirst(t *testing.T) {
	f := setup(t)
	u := f.readyImage(t, pngOf(t, 800, 800))
	var msg uuid.UUID
	f.blob.onPut = func() { msg = f.send(t, u) }
	f.runThumbnails(t)
	f.thumbOf(t, u, msg, 800, 800, 400, 400)
}

// The job holds the upload's row lock with the thumbnail set, uncommitted,
// while the attach waits for it: the attach then copies the thumbnail.
func TestThumbnailRaceJobHoldsTheLock(t *testing.T) {
	f := setup(t)
	u := f.readyImage(t, pngOf(t, 800, 400))
	sent := make(chan uuid.UUID, 1)
	f.svc.SetLockedHook(func(ctx context.Context, tx *store.Store) {
		go func() { sent <- f.send(t, u) }()
		// The job's transaction is the runner's, so its waiters are found
		// by what they wait in: the attach's statement, blocked on a lock.
		brooktest.Eventually(t, "the attach waits for the job's lock", func() bool {
			return f.n.Count(t, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
				AND wait_event_type = 'Lock' AND query LIKE '%UPDATE uploads SET attached_at%'`) > 0
		})
	})
	f.runThumbnails(t)
	msg := <-sent
	f.thumbOf(t, u, msg, 800, 400, 400, 200)
}

// A corrupt image ends its job without a thumbnail, at the first attempt:
// no retry can help.
func TestCorruptImageEndsTheJob(t *testing.T) {
	f := setup(t)
	good := pngOf(t, 100, 100)
	u := f.readyImage(t, append(good[:50:50], bytes.Repeat([]byte{7}, 500)...))
	f.runThumbnails(t)
	if n := f.jobs(t, u); n != 0 {
		t.Fatalf("%d thumbnail jobs left (retried or parked)", n)
	}
	got, err := f.n.Store.Upload(context.Background(), u.ID, false)
	if err != nil || got.ThumbKey != nil {
		t.Fatalf("upload: %+v %v", got, err)
	}
}

// A storage failure is retried with backoff, and the retry makes it.
func TestStorageFailureIsRetried(t *testing.T) {
	f := setup(t)
	u := f.readyImage(t, pngOf(t, 500, 500))
	f.blob.failOne = errors.New("connection reset by peer")
	f.runThumbnails(t)
	var attempts int
	var later bool
	if err := f.n.Store.DB().QueryRow(context.Background(), `SELECT attempts, run_at > now() FROM jobs WHERE kind = $1 AND payload->>'uploadId' = $2`,
		store.UploadThumbnailKind, u.ID.String()).Scan(&attempts, &later); err != nil || attempts != 1 || !later {
		t.Fatalf("after a failure: attempts %d, later %v, %v", attempts, later, err)
	}
	f.n.Count(t, `UPDATE jobs SET run_at = now() WHERE kind = $1 AND payload->>'uploadId' = $2 RETURNING 1`, store.UploadThumbnailKind, u.ID.String())
	f.runThumbnails(t)
	msg := f.send(t, u)
	f.thumbOf(t, u, msg, 500, 500, 400, 400)
}

// The sweep deletes uploads never attached past the age (pending ones
// too), in batches, and their objects and thumbnails through a job
// enqueued with the rows' deletion; attached and recent uploads stay.
// A sweep killed before its object job ran leaves the job, which deletes
// them later; running it twice is harmless.
func TestOrphanSweep(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	img := pngOf(t, 500, 300)
	old1, old2 := f.readyImage(t, img), f.readyImage(t, img)
	f.runThumbnails(t) // old1 and old2 get thumbnails (objects to delete too)
	attached := f.readyImage(t, img)
	f.send(t, attached)
	recent := f.readyImage(t, img)
	pending, err := f.n.Store.CreateUpload(ctx, &store.Upload{ID: store.NewID(), OwnerID: f.alice, Filename: "never.pdf",
		ContentType: "application/pdf", Size: 10, Kind: store.AttachmentFile, Key: "up/" + store.NewID().String()}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []*store.Upload{old1, old2, attached, pending} {
		f.n.Count(t, `UPDATE uploads SET created_at = now() - interval '2 days' WHERE id = $1 RETURNING 1`, u.ID)
	}
	keys := []string{old1.Key, old1.Key + ".thumb.jpg", old2.Key, old2.Key + ".thumb.jpg"}
	for _, k := range keys {
		if _, err := f.blob.Stat(ctx, k); err != nil {
			t.Fatalf("before the sweep, %s: %v", k, err)
		}
	}

	n, err := f.svc.DeleteOrphans(ctx, time.Now().Add(-24*time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("deleted %d (%v), want 3 (two batches of 2)", n, err)
	}
	ids := []uuid.UUID{old1.ID, old2.ID, pending.ID, attached.ID, recent.ID}
	if left := f.n.Count(t, `SELECT count(*) FROM uploads WHERE id = ANY($1)`, ids); left != 2 {
		t.Fatalf("%d uploads left, want 2 (attached, recent)", left)
	}
	if jobs := f.n.Count(t, `SELECT count(*) FROM jobs WHERE kind = $1`, store.UploadObjectsKind); jobs != 2 {
		t.Fatalf("%d object deletion jobs, want 2", jobs)
	}
	// The rows are gone, the objects still there until the job runs: as
	// after a crash right after the sweep's commit.
	if _, err := f.blob.Stat(ctx, old1.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := f.runner.RunOnce(ctx, []string{store.UploadObjectsKind}); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if _, err := f.blob.Stat(ctx, k); !errors.Is(err, blob.ErrNotExist) {
			t.Fatalf("after the sweep, %s: %v", k, err)
		}
	}
	for _, k := range []string{attached.Key, recent.Key} {
		if _, err := f.blob.Stat(ctx, k); err != nil {
			t.Fatalf("kept upload's object %s: %v", k, err)
		}
	}
	if jobs := f.n.Count(t, `SELECT count(*) FROM jobs WHERE kind = $1`, store.UploadObjectsKind); jobs != 0 {
		t.Fatalf("%d object deletion jobs left", jobs)
	}
	// Again: nothing more to delete; a repeated object job is harmless.
	if n, err := f.svc.DeleteOrphans(ctx, time.Now().Add(-24*time.Hour)); err != nil || n != 0 {
		t.Fatalf("second sweep: %d %v", n, err)
	}
	if _, err := f.n.Store.EnqueueJob(ctx, store.UploadObjectsKind, store.UploadObjectsJob{Keys: keys}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.runner.RunOnce(ctx, []string{store.UploadObjectsKind}); err != nil {
		t.Fatal(err)
	}
	if jobs := f.n.Count(t, `SELECT count(*) FROM jobs WHERE kind = $1`, store.UploadObjectsKind); jobs != 0 {
		t.Fatalf("a repeated object job did not finish: %d left", jobs)
	}
}

// The periodic job runs the sweep by itself.
func TestOrphanSweepRunsPeriodically(t *testing.T) {
	f := setup(t, func(o *uploadjobs.Options) { o.SweepEvery = 50 * time.Millisecond; o.OrphanAge = time.Hour })
	u := f.readyImage(t, pngOf(t, 10, 10))
	f.n.Count(t, `UPDATE uploads SET created_at = now() - interval '2 hours' WHERE id = $1 RETURNING 1`, u.ID)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.runner.Run(ctx) }()
	defer func() { cancel(); <-done }()
	brooktest.Eventually(t, "the sweep deleted the upload and its object", func() bool {
		_, err := f.blob.Stat(context.Background(), u.Key)
		return f.n.Count(t, `SELECT count(*) FROM uploads WHERE id = $1`, u.ID) == 0 && errors.Is(err, blob.ErrNotExist)
	})
}

// With the default age (a day), the periodic sweep deletes an upload
// never attached for 25 hours and keeps one of 23 hours.
func TestOrphanSweepDefaultIsADay(t *testing.T) {
	f := setup(t, func(o *uploadjobs.Options) { o.SweepEvery = 50 * time.Millisecond })
	img := pngOf(t, 10, 10)
	young, old := f.readyImage(t, img), f.readyImage(t, img)
	f.n.Count(t, `UPDATE uploads SET created_at = now() - interval '23 hours' WHERE id = $1 RETURNING 1`, young.ID)
	f.n.Count(t, `UPDATE uploads SET created_at = now() - interval '25 hours' WHERE id = $1 RETURNING 1`, old.ID)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.runner.Run(ctx) }()
	defer func() { cancel(); <-done }()
	brooktest.Eventually(t, "the day-old upload and its object deleted", func() bool {
		_, err := f.blob.Stat(context.Background(), old.Key)
		return f.n.Count(t, `SELECT count(*) FROM uploads WHERE id = $1`, old.ID) == 0 && errors.Is(err, blob.ErrNotExist)
	})
	time.Sleep(200 * time.Millisecond) // a few more sweeps
	if c := f.n.Count(t, `SELECT count(*) FROM uploads WHERE id = $1`, young.ID); c != 1 {
		t.Fatal("an upload 23 hours old was deleted")
	}
	if _, err := f.blob.Stat(context.Background(), young.Key); err != nil {
		t.Fatalf("the 23-hour-old upload's object: %v", err)
	}
}

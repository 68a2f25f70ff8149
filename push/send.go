package push

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/pushsend"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// SendKind is the outbox job that sends the pending pushes of its users.
const SendKind = "push.send"

// sendJob is a SendKind job's payload.
type sendJob struct {
	Users []string `json:"users"`
}

// Kinds of pending pushes (Notification.Kind).
const (
	KindMessage   = "message"
	KindMention   = "mention"
	KindRing      = "ring"
	KindRingEnded = "ring_ended"
)

// maxBody caps the text a push shows of a message.
const maxBody = 200

// RegisterJobs gives the workers the push job.
func (s *Service) RegisterJobs(r *workers.Runner) {
	// Alone: a job holds its transaction while it sends, and must not hold
	// up the commit (and the events) of a batch of other jobs.
	r.HandleAlone(SendKind, s.sendJob)
}

// Message queues the pushes of a new message for recipients, the members
// chat says may hear of it (the sender left out, and those who muted the
// channel or the sender or block it). Those mentioned get a mention. It
// runs in the transaction of chat's message job: only users with a device
// and no open connection get a row. Off, it does nothing.
func (s *Service) Message(ctx context.Context, tx *store.Store, msg *store.Message, ch *store.Channel, recipients []string) error {
	if !s.Enabled() || len(recipients) == 0 || msg.Type == store.MessageSystem || msg.Shadowed {
		return nil
	}
	users, err := s.offlineWithDevices(ctx, tx, recipients)
	if err != nil || len(users) == 0 {
		return err
	}
	title := "#" + ch.ID
	if ch.Name != nil && *ch.Name != "" {
		title = "#" + *ch.Name
	}
	actor := msg.UserID
	if msg.Sender != nil && msg.Sender.Name != nil && *msg.Sender.Name != "" {
		actor = *msg.Sender.Name
	}
	cid, mid := ch.ID, msg.ID
	ps := make([]store.PushPending, 0, len(users))
	for _, u := range users {
		kind := KindMessage
		if slices.Contains(msg.MentionedUserIDs, u) {
			kind = KindMention
		}
		ps = append(ps, store.PushPending{UserID: u, Kind: kind, ChannelID: &cid, MessageID: &mid, Actor: &actor,
			Title: title, Body: cut(msg.Text, maxBody)})
	}
	return s.queue(ctx, tx, ps, time.Now().Add(s.opts.Delay))
}

// Rings queues the pushes of a ring change: a ring to each user rung, and
// to each user whose ring stopped (accepted elsewhere, rejected, missed,
// cancelled) a ring_ended push that stops the ringing on its devices. They
// do not wait for company. It runs in the ring's transaction.
func (s *Service) Rings(ctx context.Context, tx *store.Store, out *store.RingOutcome) error {
	if !s.Enabled() || out == nil || len(out.Rings) == 0 {
		return nil
	}
	var rung []string
	for _, r := range out.Rings {
		rung = append(rung, r.UserID)
	}
	users, err := s.offlineWithDevices(ctx, tx, rung)
	if err != nil || len(users) == 0 {
		return err
	}
	var ps []store.PushPending
	for _, r := range out.Rings {
		if !slices.Contains(users, r.UserID) {
			continue
		}
		call, caller := r.CallID, r.CallerID
		p := store.PushPending{UserID: r.UserID, Kind: KindRing, CallID: &call, Actor: &caller,
			Title: caller + " is calling", Body: string(r.State)}
		if r.State != store.RingRinging {
			p.Kind = KindRingEnded
			p.Title = ""
			if r.State == store.RingMissed {
				p.Title = "Missed call from " + caller
			}
		}
		ps = append(ps, p)
	}
	return s.queue(ctx, tx, ps, time.Time{})
}

// offlineWithDevices returns those of users who have a device and no open
// connection. When Redis cannot say, everyone with a device: the job asks
// again before it sends.
func (s *Service) offlineWithDevices(ctx context.Context, tx *store.Store, users []string) ([]string, error) {
	withDevice, err := tx.UsersWithPushDevices(ctx, users)
	if err != nil || len(withDevice) == 0 {
		return nil, err
	}
	online, err := s.state.Online(ctx, withDevice)
	if err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "push: presence unknown; the push job will look again", "err", err)
		return withDevice, nil
	}
	var out []string
	for i, u := range withDevice {
		if !online[i] {
			out = append(out, u)
		}
	}
	return out, nil
}

// queue writes pending pushes and the job that sends them at at.
func (s *Service) queue(ctx context.Context, tx *store.Store, ps []store.PushPending, at time.Time) error {
	if len(ps) == 0 {
		return nil
	}
	if err := tx.AddPushPending(ctx, ps); err != nil {
		return err
	}
	var users []string
	for _, p := range ps {
		if !slices.Contains(users, p.UserID) {
			users = append(users, p.UserID)
		}
	}
	_, err := tx.EnqueueJobAt(ctx, SendKind, sendJob{Users: users}, at)
	return err
}

// sendJob sends the pending pushes of its users. Rows another job holds
// are skipped (it sends them); rows that commit after this job read them
// have a job of their own. Each device's delivery is recorded as soon as
// it is sent, outside the job's transaction, so a job that fails on
// another device and is retried does not send it twice.
func (s *Service) sendJob(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
	var p sendJob
	if err := job.Decode(&p); err != nil {
		return nil, err
	}
	pending, err := tx.ClaimPushPending(ctx, p.Users)
	if err != nil || len(pending) == 0 {
		return nil, err
	}
	byUser := map[string][]store.PushPending{}
	var users []string
	var done []int64 // rows to delete whatever happens to the sends
	for _, row := range pending {
		if time.Since(row.CreatedAt) > s.opts.MaxAge {
			s.log.Warn("push: pending push too old; dropped unsent", "user", row.UserID, "kind", row.Kind, "age", time.Since(row.CreatedAt).Round(time.Second))
			done = append(done, row.ID)
			continue
		}
		if byUser[row.UserID] == nil {
			users = append(users, row.UserID)
		}
		byUser[row.UserID] = append(byUser[row.UserID], row)
	}
	if len(users) > 0 {
		// Who has come online since sees the news in the app.
		online, err := s.state.Online(ctx, users)
		if err != nil {
			return nil, err
		}
		offline := users[:0]
		for i, u := range users {
			if online[i] {
				for _, row := range byUser[u] {
					done = append(done, row.ID)
				}
				delete(byUser, u)
				continue
			}
			offline = append(offline, u)
		}
		users = offline
	}
	var failed error
	if len(users) > 0 {
		devices, err := tx.PushDevices(ctx, users)
		if err != nil {
			return nil, err
		}
		failed = s.deliver(ctx, byUser, devices)
	}
	if failed != nil {
		// Every row stays for the retry (the job's writes roll back); what
		// was sent is recorded per device, and who is online or too old
		// then is looked at again.
		return nil, failed
	}
	for _, rows := range byUser {
		for _, row := range rows {
			done = append(done, row.ID)
		}
	}
	return nil, tx.DeletePushPending(ctx, done)
}

// deliver sends every user's notifications to each of its devices, a
// few at a time. It returns an error when some send failed and should be
// retried.
func (s *Service) deliver(ctx context.Context, byUser map[string][]store.PushPending, devices []*store.PushDevice) error {
	var (
		mu     sync.Mutex
		failed error
		wg     sync.WaitGroup
		slots  = make(chan struct{}, s.opts.Concurrency)
	)
	for _, d := range devices {
		rows := byUser[d.UserID]
		if len(rows) == 0 {
			continue
		}
		through := rows[len(rows)-1].ID
		if d.DeliveredThrough >= through {
			continue // sent by an earlier attempt
		}
		sender := s.opts.Senders[pushsend.Provider(d.Provider)]
		if sender == nil {
			continue // its provider is not configured on this server
		}
		ns := notifications(d.UserID, rows, d.VoIP)
		if len(ns) == 0 {
			continue
		}
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			if err := s.sendDevice(ctx, sender, d, ns, through); err != nil {
				mu.Lock()
				failed = errors.Join(failed, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed
}

// sendDevice sends ns to one device and records the outcome: delivered
// through the user's newest row, removed when its token is invalid, or an
// error to retry.
func (s *Service) sendDevice(ctx context.Context, sender pushsend.Sender, d *store.PushDevice, ns []pushsend.Notification, through int64) error {
	provider := string(d.Provider)
	for _, n := range ns {
		sctx, cancel := context.WithTimeout(ctx, s.opts.SendTimeout)
		err := sender.Send(sctx, d.Token, n)
		cancel()
		var ra *pushsend.RetryAfterError
		switch {
		case err == nil:
			s.sent.WithLabelValues(provider, "sent").Inc()
			continue
		case errors.Is(err, pushsend.ErrInvalidToken):
			s.sent.WithLabelValues(provider, "invalid_token").Inc()
			s.log.Info("push: provider says the token is invalid; device removed", "user", d.UserID, "device", d.ID, "provider", provider, "err", err)
			if derr := s.store.DeletePushDevice(ctx, d.ID); derr != nil {
				return derr
			}
			return nil
		case errors.As(err, &ra):
			s.sent.WithLabelValues(provider, "retry_after").Inc()
			s.log.Warn("push: provider asks to retry later", "user", d.UserID, "device", d.ID, "provider", provider, "after", ra.After, "err", err)
			return fmt.Errorf("push: device %s: %w", d.ID, err)
		default:
			s.sent.WithLabelValues(provider, "failed").Inc()
			s.log.Warn("push: send failed; will retry", "user", d.UserID, "device", d.ID, "provider", provider, "err", err)
			return fmt.Errorf("push: device %s: %w", d.ID, err)
		}
	}
	return s.store.MarkPushDelivered(ctx, d.ID, through)
}

// notifications makes a user's pending rows into what its device is sent:
// each ring (or ring's end) alone and urgent, and the messages as one push
// with a count ("3 new messages in #general"), a mention if one mentions
// the user. A VoIP device gets the rings only.
func notifications(user string, rows []store.PushPending, voip bool) []pushsend.Notification {
	var out []pushsend.Notification
	var msgs []store.PushPending
	mention := false
	for _, r := range rows {
		switch r.Kind {
		case KindRing, KindRingEnded:
			call := deref(r.CallID)
			n := pushsend.Notification{ID: pushID(user, r.ID), Kind: r.Kind, Title: r.Title,
				Data:        map[string]string{"call": call, "caller": deref(r.Actor), "state": r.Body},
				CollapseKey: "call:" + call, TTL: 30 * time.Second, Urgent: r.Kind == KindRing, VoIP: voip}
			out = append(out, n)
		default:
			msgs = append(msgs, r)
			mention = mention || r.Kind == KindMention
		}
	}
	if len(msgs) == 0 || voip {
		return out
	}
	last := msgs[len(msgs)-1]
	channels := map[string]bool{}
	for _, m := range msgs {
		channels[deref(m.ChannelID)] = true
	}
	n := pushsend.Notification{ID: pushID(user, last.ID), Kind: KindMessage, TTL: 24 * time.Hour,
		Data: map[string]string{"count": strconv.Itoa(len(msgs))}}
	if mention {
		n.Kind = KindMention
	}
	switch {
	case len(channels) > 1:
		n.Title = "New messages"
		n.Body = fmt.Sprintf("%d new messages in %d channels", len(msgs), len(channels))
		n.CollapseKey = "messages"
	case len(msgs) > 1:
		n.Title = last.Title
		n.Body = fmt.Sprintf("%d new messages in %s", len(msgs), last.Title)
		n.CollapseKey = "channel:" + deref(last.ChannelID)
		n.Data["channel"] = deref(last.ChannelID)
	default:
		n.Title = deref(last.Actor) + " in " + last.Title
		if last.Kind == KindMention {
			n.Title = deref(last.Actor) + " mentioned you in " + last.Title
		}
		n.Body = last.Body
		n.CollapseKey = "channel:" + deref(last.ChannelID)
		n.Data["channel"] = deref(last.ChannelID)
		if last.MessageID != nil {
			n.Data["message"] = last.MessageID.String()
		}
	}
	return append(out, n)
}

// pushNS names push ids: the same user and newest row give the same id on
// every retry.
var pushNS = uuid.MustParse("5f0c2a4e-8a51-4c43-9d7e-0b6f1f3c7a21")

func pushID(user string, row int64) string {
	return uuid.NewSHA1(pushNS, []byte(user+"\x00"+strconv.FormatInt(row, 10))).String()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// cut shortens s to at most n characters, with an ellipsis.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

package chat

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/linkpreview"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
	"github.com/brookhq/brook/workers"
)

// Link previews: a sent message whose text has an http(s) URL gets a LINK
// attachment with the page's title, description and image, made by a
// preview job that the message's own job (messageJob) queues, so the send
// path runs no statement more. The first URL of the text is previewed, as
// Stream does. The preview arrives as message.updated, like an edit, but
// is none: updatedAt does not change.

// previewURL is the URL a message's preview job fetches, or "" when it
// gets no preview: previews are off, it is a system or deleted message,
// it has a LINK attachment already, or its text has no URL.
func (s *Service) previewURL(m *store.Message) string {
	if s.previews == nil || m.Type == store.MessageSystem || m.DeletedAt != nil || store.HasLink(m.Attachments) {
		return ""
	}
	return linkpreview.FirstURL(m.Text)
}

// queuePreview writes m's preview job on tx, the transaction of m's job,
// when m gets a preview; it reports whether it wrote one.
func (s *Service) queuePreview(ctx context.Context, tx *store.Store, m *store.Message) (bool, error) {
	u := s.previewURL(m)
	if u == "" {
		return false, nil
	}
	if _, err := tx.EnqueueJob(ctx, store.PreviewMessageKind, store.PreviewJob{ID: m.ID, URL: u}); err != nil {
		return false, err
	}
	return true, nil
}

// inTxIf runs fn in a transaction when tx is set, else on the pool.
func (s *Service) inTxIf(ctx context.Context, tx bool, fn func(st *store.Store) error) error {
	if !tx {
		return fn(s.store)
	}
	return s.store.InTx(ctx, fn)
}

// RegisterPreviewJobs gives r, the preview workers, the messages' preview
// job. Without previews (nil) there is none.
func (s *Service) RegisterPreviewJobs(r *workers.Runner) {
	if s.previews == nil {
		return
	}
	r.Handle(store.PreviewMessageKind, s.previews.Handler(linkpreview.Target{
		Wants: func(ctx context.Context, tx *store.Store, p store.PreviewJob) (bool, error) {
			m, err := tx.MessagesByID(ctx, []uuid.UUID{p.ID})
			if err != nil || m[0] == nil {
				return false, err // gone, with its channel
			}
			return m[0].DeletedAt == nil && !store.HasLink(m[0].Attachments) && strings.Contains(m[0].Text, p.URL), nil
		},
		Add: s.addPreview,
	}))
}

// addPreview adds a preview to its message, if the message still wants
// it, and emits and publishes message.updated as updateMessage does (no
// user: Brook made the change).
func (s *Service) addPreview(ctx context.Context, tx *store.Store, p store.PreviewJob, a store.Attachment) (func(context.Context), error) {
	m, err := tx.AddMessagePreview(ctx, p.ID, a)
	if err != nil || m == nil {
		return nil, err
	}
	if err := s.hooks.Emit(ctx, tx, webhooks.Event{Type: EventMessageUpdated, Key: "channel:" + m.ChannelID, At: time.Now(),
		Payload: messageHook{Channel: m.ChannelID, Message: m}}); err != nil {
		return nil, err
	}
	return func(ctx context.Context) {
		s.ensureMessageNew(ctx, m)
		s.publishChannel(ctx, EventMessageUpdated, m.ChannelID, "", s.withReactions(ctx, m))
	}, nil
}

// ensureMessageNew publishes a recent message's message.new unless it was
// published already, so that no subscriber gets a change of a message
// before the message: a preview's job may run before both the request
// that sent the message and the message's job have published it (a
// loaded node). Past messageNewOnce the mark is gone and the message long
// published: nothing is done.
func (s *Service) ensureMessageNew(ctx context.Context, m *store.Message) {
	if time.Since(m.CreatedAt) > messageNewOnce-time.Minute {
		return
	}
	msg, ch, _, err := messageFacts(ctx, s.store, m.ID)
	if err == nil && msg != nil {
		_, err = s.publishMessageNew(ctx, msg, ch.MemberRemovals)
	}
	if err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "chat: message.new before its preview", "message", m.ID, "err", err)
	}
}

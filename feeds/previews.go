package feeds

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/linkpreview"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// Link previews of activities: a posted activity whose object is (or
// holds) an http(s) URL, or else whose data has a "text" string holding
// one, gets a LINK attachment with the page's title, description and
// image: a share of an article (verb "share", object
// "https://example.com/a") or a status update (data {"text": "look
// https://..."}). Its announcing job (activityJob) queues the preview job;
// the preview arrives as a change of the activity (feedUpdated's
// updated), without changing updatedAt. The first URL is previewed.

// activityText is the field of an activity's data whose URLs are previewed.
type activityText struct {
	Text string `json:"text"`
}

// previewURL is the URL an activity's preview job fetches, or "".
func (s *Service) previewURL(a *store.Activity) string {
	if s.previews == nil || store.HasLink(a.Attachments) {
		return ""
	}
	if u := linkpreview.FirstURL(a.Object); u != "" {
		return u
	}
	return linkpreview.FirstURL(dataText(a.Data))
}

// dataText is data's "text" string, or "".
func dataText(data json.RawMessage) string {
	var t activityText
	if len(data) == 0 || json.Unmarshal(data, &t) != nil {
		return ""
	}
	return t.Text
}

// queuePreview writes a's preview job on tx, the transaction of a's
// announcing job, when a gets a preview; it returns after, or a step that
// runs after and then wakes the preview workers.
func (s *Service) queuePreview(ctx context.Context, tx *store.Store, a *store.Activity, after func(context.Context)) (func(context.Context), error) {
	u := s.previewURL(a)
	if u == "" {
		return after, nil
	}
	if _, err := tx.EnqueueJob(ctx, store.PreviewActivityKind, store.PreviewJob{ID: a.ID, URL: u}); err != nil {
		return nil, err
	}
	return func(ctx context.Context) {
		after(ctx)
		s.previews.Wake()
	}, nil
}

// RegisterPreviewJobs gives r, the preview workers, the activities'
// preview job. Without previews (nil) there is none.
func (s *Service) RegisterPreviewJobs(r *workers.Runner) {
	if s.previews == nil {
		return
	}
	r.Handle(store.PreviewActivityKind, s.previews.Handler(linkpreview.Target{
		Wants: func(ctx context.Context, tx *store.Store, p store.PreviewJob) (bool, error) {
			acts, err := tx.ActivitiesByID(ctx, []uuid.UUID{p.ID})
			if err != nil || acts[0] == nil {
				return false, err // removed
			}
			a := acts[0]
			return !store.HasLink(a.Attachments) && (strings.Contains(a.Object, p.URL) || strings.Contains(dataText(a.Data), p.URL)), nil
		},
		Add: func(ctx context.Context, tx *store.Store, p store.PreviewJob, at store.Attachment) (func(context.Context), error) {
			a, err := tx.AddActivityPreview(ctx, p.ID, at)
			if err != nil || a == nil {
				return nil, err
			}
			// As an edit: feedUpdated streams that show it read it again.
			return func(ctx context.Context) { s.publishActivityChanged(ctx, a.ID, "") }, nil
		},
	}))
}
